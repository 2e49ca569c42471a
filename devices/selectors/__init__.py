"""Reads for devices, one module per subject: `devices` (one device, the fleet list, the sandbox list),
`groups`, `transfers`, `sims`, `customers`, `jobs` (background imports and their reports), `limits`.

Product reads start from a product already resolved through `products.selectors.product_get`, so the
caller's access is settled; each runs a fixed number of queries whatever the page. Import the module you
need: this package re-exports nothing.
"""
