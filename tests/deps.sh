# tests/deps.sh - the one list of Debian packages the project needs, and the installer that
# tests/run and lab/demo both use. Source it, then call cdn_install_deps.

# Build: compiler, autotools, and every library configure.ac checks for.
CDN_PKGS_BUILD="gcc make autoconf automake libtool pkg-config
 libh2o-evloop-dev librocksdb-dev libc-ares-dev libcurl4-openssl-dev libyaml-dev libssl-dev
 libsqlite3-dev libpq-dev libpng-dev zlib1g-dev libcmocka-dev libzstd-dev libxxhash-dev libhiredis-dev
 libsystemd-dev help2man libwebp-dev libavif-dev"
# Tests: the real clients the tests talk with, and what the harness itself calls.
# redis-server: the invalidation bus and the shared rate limits; tests start their own instance.
# postgresql: shop-app's second backend; tests start private servers (initdb + pg_ctl) and skip without it.
CDN_PKGS_TEST="curl nghttp2-client knot-dnsutils dnsutils python3 iproute2 procps openssl redis-server postgresql"
# chromium: the storefront in a real browser (tests/integration/shop_browser.sh skips without it).
CDN_PKGS_TEST="$CDN_PKGS_TEST chromium"
# The external DNS checkers (dnsviz probe, zonemaster-cli against a fake root on knotd): without them
# those two tests skip.
CDN_PKGS_TEST="$CDN_PKGS_TEST dnsviz zonemaster-cli knot"
# The HTTP cache conformance suite (tests/conformance/) runs on node >= 14.8 and npm (bookworm: 18 and
# 9.2); without them it skips. So they are installed best effort, apart from the list above: a node
# from elsewhere counts (NodeSource's nodejs bundles npm and conflicts with Debian's npm package),
# and a failed install fails nothing.
CDN_PKGS_TEST_NODE="nodejs npm"
# Lab: plots, routing, link tuning (lab/demo).
CDN_PKGS_LAB="gnuplot-nox bird2 ethtool redis-server"

# cdn_install_deps GROUP... : installs what is missing (as root, with apt-get); quick when nothing is.
cdn_install_deps() {
    local want="" p missing=""
    for g in "$@"; do
        case "$g" in
            build) want="$want $CDN_PKGS_BUILD" ;;
            test) want="$want $CDN_PKGS_TEST"; cdn_install_node ;;
            lab) want="$want $CDN_PKGS_LAB" ;;
        esac
    done
    for p in $want; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "missing Debian packages:$missing" >&2
        echo "install them as root: apt-get install$missing" >&2
        return 1
    fi
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || return 1
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing >/dev/null || return 1
}

# cdn_install_node : node and npm for tests/conformance/ when missing; never fails.
cdn_install_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "optional: apt-get install $CDN_PKGS_TEST_NODE (tests/conformance skips without them)" >&2
        return 0
    fi
    echo "installing: $CDN_PKGS_TEST_NODE"
    # shellcheck disable=SC2086
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $CDN_PKGS_TEST_NODE; } >/dev/null 2>&1 ||
        echo "could not install $CDN_PKGS_TEST_NODE: tests/conformance will skip" >&2
    return 0
}
