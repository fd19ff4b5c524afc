/* origin/shop/assets.c - the storefront's stylesheet and script, built into the program.
 *
 * Each asset is served under a name that carries a hash of its bytes
 * (/assets/shop.<16 hex>.css), so a page can let browsers and the CDN keep it for a year
 * (`immutable`): a new build with other bytes is another URL, and the short-lived HTML that links
 * it moves clients over. The hash is FNV-1a 64 (shop_hash64) of the body, the same on every app
 * server. Pure: no I/O; the names are made once (pthread_once) and then read-only. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "origin/shop/shop.h"

static const char css[] =
    ":root{--ink:#1d2430;--muted:#5b6676;--line:#e3e7ee;--accent:#0b6bcb;--bg:#f6f7f9}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:16px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:var(--ink);"
    "background:var(--bg)}\n"
    "a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}\n"
    ".top{display:flex;align-items:center;gap:1rem;padding:.6rem 1.2rem;background:#fff;"
    "border-bottom:1px solid var(--line);position:sticky;top:0;z-index:1}\n"
    ".brand{font-weight:700;font-size:1.2rem;color:var(--ink)}\n"
    ".search{flex:1;display:flex;max-width:36rem}\n"
    ".search input{flex:1;padding:.45rem .7rem;border:1px solid var(--line);border-radius:6px 0 0 6px;font:inherit}\n"
    ".search button{padding:.45rem .9rem;border:0;border-radius:0 6px 6px 0;background:var(--accent);color:#fff;"
    "font:inherit}\n"
    ".cartlink{margin-left:auto;font-weight:600}\n"
    ".count{display:inline-block;min-width:1.4em;margin-left:.3em;padding:0 .35em;border-radius:1em;"
    "background:var(--accent);color:#fff;font-size:.8rem;text-align:center}\n"
    ".count:empty{display:none}\n"
    "main{max-width:75rem;margin:0 auto;padding:1rem 1.2rem 2rem}\n"
    "h1{font-size:1.5rem;margin:.4rem 0 1rem}h2{font-size:1.15rem;margin:1.6rem 0 .6rem}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(11rem,1fr));gap:1rem;padding:0;"
    "margin:0;list-style:none}\n"
    ".card{background:#fff;border:1px solid var(--line);border-radius:8px;overflow:hidden}\n"
    ".card a{display:block;color:var(--ink)}\n"
    ".card img{display:block;width:100%;height:auto;aspect-ratio:1/1;background:var(--line)}\n"
    ".card .name{display:block;padding:.5rem .6rem 0;font-size:.92rem}\n"
    ".price{font-weight:700}.card .price{display:block;padding:.2rem .6rem .6rem}\n"
    ".cats{display:flex;flex-wrap:wrap;gap:.4rem;padding:0;list-style:none}\n"
    ".cats a{display:inline-block;padding:.25rem .6rem;border:1px solid var(--line);border-radius:1em;"
    "background:#fff;font-size:.9rem}\n"
    ".product{display:grid;grid-template-columns:minmax(0,1fr) minmax(16rem,26rem);gap:2rem;align-items:start}\n"
    ".product img{width:100%;max-width:640px;height:auto;aspect-ratio:1/1;border-radius:8px;background:var(--line)}\n"
    "@media (max-width:700px){.product{grid-template-columns:1fr}.search{display:none}}\n"
    ".buy button,.cart button{padding:.6rem 1.2rem;border:0;border-radius:6px;background:var(--accent);color:#fff;"
    "font:inherit;cursor:pointer}\n"
    ".cart button{padding:.25rem .6rem;background:#8a95a5}\n"
    "table.cart{border-collapse:collapse;width:100%;background:#fff}\n"
    ".cart td,.cart th{padding:.5rem;border-bottom:1px solid var(--line);text-align:left}\n"
    ".crumbs{font-size:.9rem;color:var(--muted)}\n"
    ".pager{display:flex;gap:1rem;margin-top:1rem}\n"
    "footer{color:var(--muted);font-size:.8rem;text-align:center;padding:2rem}\n";

/* Progressive only: every page works without it. It shows the number of items in the cart (the
 * "cart" cookie is readable by design; the "sid" cookie is HttpOnly) so that cacheable pages stay
 * the same for everyone. */
static const char js[] =
    "(function(){\n"
    "  var m = document.cookie.match(/(?:^|; )cart=([^;]*)/), n = 0;\n"
    "  if (m) m[1].split('.').forEach(function(it){ var q = +it.split(':')[1]; if (q > 0) n += q; });\n"
    "  var el = document.getElementById('cart-count');\n"
    "  if (el) el.textContent = n > 0 ? String(n) : '';\n"
    "})();\n";

static struct shop_asset assets[SHOP_NASSETS] = {
    {"", "text/css; charset=utf-8", css, sizeof(css) - 1},
    {"", "text/javascript; charset=utf-8", js, sizeof(js) - 1},
};
static char paths[SHOP_NASSETS][48];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void make_names(void)
{
    static const char *const ext[SHOP_NASSETS] = {"css", "js"};
    for (int i = 0; i < SHOP_NASSETS; i++) {
        snprintf(paths[i], sizeof(paths[i]), "/assets/shop.%016llx.%s",
                 (unsigned long long)shop_hash64(assets[i].body, assets[i].len), ext[i]);
        assets[i].path = paths[i];
    }
}

const struct shop_asset *shop_asset_get(enum shop_asset_kind k)
{
    pthread_once(&once, make_names);
    return (unsigned)k < SHOP_NASSETS ? &assets[k] : NULL;
}

const struct shop_asset *shop_asset_find(const char *path, size_t len)
{
    pthread_once(&once, make_names);
    for (int i = 0; i < SHOP_NASSETS; i++)
        if (strlen(assets[i].path) == len && memcmp(assets[i].path, path, len) == 0)
            return &assets[i];
    return NULL;
}
