"""Writes for devices, one module per subject: `registry` (manufacture), `devices` (edits, removal, deny),
`groups`, `claims` (claiming, claim codes), `transfers`, `importing`, `jobs` (background imports), `sims`,
`customers`, and `limits` (the free sandbox limit).

Each service is keyword-only, takes typed values (the doors parse Particle's bodies), runs in one
transaction, writes an audit entry when it changes something, and raises the typed errors of
`console.errors` when it refuses. Import the module you need: this package re-exports nothing.
"""
