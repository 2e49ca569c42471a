"""Writes for accounts and credentials, one module per subject: `users`, `orgs`, `tokens` (issuing and
`/oauth/token`'s grants), `login` (password checks and lockouts), `clients` (OAuth clients), `teams` (org and
product teams, API users), `audit`.

Each service is keyword-only, runs in one transaction, and raises the typed errors of `console.errors` when
it refuses; the API, the console, the admin and the tasks all call these. Import the module you need: this
package re-exports nothing.
"""
