// verdict.mjs: judges one run of the http-cache-tests suite against cdn-edge.
// Usage: node verdict.mjs PKG_DIR RESULTS.json EXPECTED_FILE
// Prints one record a line, fields separated by tabs, for cachetests.sh to turn into TAP:
//   ok<TAB>description | not ok<TAB>description<TAB>detail | diag<TAB>text
// A test's class follows the suite's own report (lib/display.mjs) so that our numbers and the
// published ones for other caches (PKG_DIR/results/*.json) mean the same thing:
//   untested (no result), dependency_fail (a test it depends on is neither pass nor yes),
//   setup_fail / retry (["Setup", ...]: the cache made a choice the test cannot go past),
//   harness_fail (false), then by kind: required (or none) pass|fail, optimal pass|optional_fail,
//   check yes|no.
import fs from 'fs'
import path from 'path'

const [pkgDir, resultsFile, expectedFile] = process.argv.slice(2)
if (!expectedFile) {
  console.error('usage: node verdict.mjs PKG_DIR RESULTS.json EXPECTED_FILE')
  process.exit(2)
}
const out = (...fields) => console.log(fields.map(f => String(f).replace(/[\t\n]/g, ' ')).join('\t'))
// '#' starts a TAP directive: keep it out of descriptions.
const tapSafe = s => String(s).replace(/#/g, 'no.')

// The suites exactly as cli.mjs assembles them.
const suites = (await import(path.join(pkgDir, 'tests', 'index.mjs'))).default
suites.push((await import(path.join(pkgDir, 'tests', 'surrogate-control.mjs'))).default)
const byId = new Map()
for (const suite of suites) for (const t of suite.tests) byId.set(t.id, t)
const ids = [...byId.keys()]
// cli.mjs runs without a browser cache, so browser-only tests never get a result.
const runIds = ids.filter(id => byId.get(id).browser_only !== true)

function classify (results, id, depth = 0) {
  const t = byId.get(id)
  const r = results[id]
  if (r === undefined) return 'untested'
  if (t.depends_on && depth < 20) {
    for (const dep of t.depends_on) {
      if (!['pass', 'yes'].includes(classify(results, dep, depth + 1))) return 'dependency_fail'
    }
  }
  if (Array.isArray(r) && r[0] === 'Setup') return r[1] === 'retry' ? 'retry' : 'setup_fail'
  if (r === false) return 'harness_fail'
  if (t.kind === 'optimal') return r === true ? 'pass' : 'optional_fail'
  if (t.kind === 'check') return r === true ? 'yes' : 'no'
  return r === true ? 'pass' : 'fail'
}
const isRequired = id => [undefined, 'required'].includes(byId.get(id).kind)
const why = r => (Array.isArray(r) ? r.join(': ') : JSON.stringify(r))

const readJson = f => JSON.parse(fs.readFileSync(f, 'utf8'))
const ours = readJson(resultsFile)
const peers = [['nginx', 'nginx'], ['varnish', 'varnish'], ['trafficserver', 'trafficserver'], ['squid', 'squid']]
  .map(([name, file]) => [name, readJson(path.join(pkgDir, 'results', `${file}.json`))])
const columns = [['cdn-edge', ours], ...peers]

// The comparison table.
const classes = ['pass', 'fail', 'optional_fail', 'yes', 'no', 'setup_fail', 'harness_fail',
  'dependency_fail', 'retry', 'untested']
const count = (results, cls) => ids.filter(id => classify(results, id) === cls).length
out('diag', 'result'.padEnd(16) + columns.map(([n]) => n.padStart(14)).join(''))
for (const cls of classes) {
  out('diag', cls.padEnd(16) + columns.map(([, r]) => String(count(r, cls)).padStart(14)).join(''))
}

// (a) a result for every test the CLI runs.
const missing = runIds.filter(id => ours[id] === undefined)
if (missing.length === 0) {
  out('ok', `results for all ${runIds.length} tests the CLI runs (${ids.length} in the suite, ${ids.length - runIds.length} browser-only)`)
} else {
  out('not ok', `results for all ${runIds.length} tests the CLI runs`, `${missing.length} missing: ${missing.slice(0, 20).join(' ')}`)
}

// The expected list: "id<TAB>reason" lines, '#' comments, blank lines ignored.
const expected = new Map()
const badLines = []
fs.readFileSync(expectedFile, 'utf8').split('\n').forEach((line, i) => {
  if (/^\s*(#|$)/.test(line)) return
  const m = line.match(/^(\S+)\t+(\S.*)$/)
  if (!m) badLines.push(`line ${i + 1}`)
  else expected.set(m[1], m[2].trim())
})
if (badLines.length) out('not ok', 'cachetests.expected: every line is "id<TAB>reason"', badLines.join(', '))

// (b) every required test passes unless it is a listed known failure. A setup failure counts: it
// means cdn-edge chose something (not storing, a 502) that the test could not get past, and a
// required test sliding from pass to that must show here, not only in the pass count.
const unexpected = ids.filter(id => isRequired(id) &&
  ['fail', 'harness_fail', 'setup_fail', 'retry'].includes(classify(ours, id)) && !expected.has(id))
if (unexpected.length === 0) {
  out('ok', 'every required test passes or is listed in cachetests.expected')
} else {
  out('not ok', `every required test passes or is listed in cachetests.expected: ${unexpected.length} new failures`)
  for (const id of unexpected) out('diag', `new failure: ${id}: ${why(ours[id])}`)
}

// (c) every listed id is a test of the suite and still does not pass: a fix removes it from the list.
for (const [id, reason] of expected) {
  const desc = tapSafe(`known failure still fails: ${id} (${reason})`)
  if (!byId.has(id)) out('not ok', desc, 'not a test id of this suite version')
  else if (['pass', 'yes'].includes(classify(ours, id))) out('not ok', desc, 'it passes now: remove it from tests/conformance/cachetests.expected')
  else out('ok', desc)
}

// (d) at least as many passes as each published peer result.
const mine = count(ours, 'pass')
for (const [name, r] of peers) {
  const theirs = count(r, 'pass')
  const desc = `passes: cdn-edge ${mine} >= ${name} ${theirs}`
  if (mine >= theirs) out('ok', desc)
  else out('not ok', desc)
}
