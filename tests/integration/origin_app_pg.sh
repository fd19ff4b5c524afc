#!/usr/bin/env bash
# origin_app.sh's checks with shop-app on PostgreSQL (a private server: tests/pglib.sh); skipped
# with the reason where no server can start.
SHOP_DB=pg exec bash "$(dirname "$0")/origin_app.sh"
