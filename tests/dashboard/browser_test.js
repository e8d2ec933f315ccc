#!/usr/bin/env node
// The dashboard in a real browser: Debian's headless Chromium driven by
// puppeteer-core (pinned in package-lock.json, installed by tools/setup.sh)
// against a real stack from tools/dev-up.sh (redis-server, the five workers,
// the orchestrator with TLS and --http-listen, a photo server on 127.0.0.1).
//
//   node tests/dashboard/browser_test.js --build-dir BUILD [--screenshot-dir DIR]
//
// Logs in with the dev token, submits chains with the CLI and watches them
// appear and finish live (server-sent events, no reload), filters, opens a
// timeline with thumbnails, cancels a retrying chain and retries a failed
// one, and saves screenshots (docs/dashboard.png comes from here). Exit 0 on
// success, 1 on a failure, 77 (ctest: skipped) when Chromium or
// puppeteer-core is not installed (tools/setup.sh installs both) -- but 1
// then too under tools/test.sh (CONVEYOR_REQUIRE_BROWSER=1), where setup
// has just run: a missing install step must fail CI, not skip the test.
'use strict';

const {execFileSync} = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30000;
const root = path.resolve(__dirname, '..', '..');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const build = path.resolve(arg('--build-dir', path.join(root, 'build')));
const shots = arg('--screenshot-dir', '');

// ctest's "skipped", or a failure where the prerequisites must be there.
const kMissing = process.env.CONVEYOR_REQUIRE_BROWSER === '1' ? 1 : 77;
let puppeteer;
try {
  puppeteer = require('puppeteer-core');
} catch (e) {
  console.log('SKIP: puppeteer-core is not installed (tools/setup.sh: npm ci in tests/dashboard)');
  process.exit(kMissing);
}
if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} is not installed (tools/setup.sh installs Debian's chromium)`);
  process.exit(kMissing);
}

const state = fs.mkdtempSync(path.join(os.tmpdir(), 'conveyor-dashboard-test-'));

function devUp() {
  execFileSync(path.join(root, 'tools', 'dev-up.sh'),
               ['--build-dir', build, '--state-dir', state, '--quiet'], {stdio: 'inherit'});
  const env = {};
  for (const line of fs.readFileSync(path.join(state, 'env'), 'utf8').split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
    if (m && !m[2].includes('$')) env[m[1]] = m[2];
  }
  env.CONVEYOR_TOKEN = fs.readFileSync(path.join(state, 'token'), 'utf8').trim();
  return env;
}

function devDown() {
  try {
    execFileSync(path.join(root, 'tools', 'dev-down.sh'), ['--state-dir', state],
                 {stdio: 'inherit'});
  } catch (e) {
    console.error(`dev-down failed: ${e.message}`);
  }
}

// The CLI, as a user would run it after `source <state>/env`; the chain id.
function submit(env, args) {
  const out = execFileSync(path.join(build, 'bin', 'conveyor'), ['submit', ...args],
                           {env: {...process.env, ...env}, encoding: 'utf8',
                            stdio: ['ignore', 'pipe', 'pipe']});
  const m = /chains\/([0-9a-f]{32})/.exec(out);
  if (!m) throw new Error(`conveyor submit printed no chain name: ${out}`);
  return m[1];
}

// The SHA-256 of the orchestrator's public key, base64: Chromium trusts
// exactly that certificate (the throwaway dev CA is not in its store).
function spki(cert) {
  const pub = execFileSync('openssl', ['x509', '-in', cert, '-pubkey', '-noout']);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], {input: pub});
  return execFileSync('openssl', ['dgst', '-sha256', '-binary'], {input: der}).toString('base64');
}

function check(condition, message) {
  if (!condition) throw new Error(message);
  console.log(`ok: ${message}`);
}

async function rowState(page, id) {
  return page.$eval(`#chain-table tr[data-chain="${id}"]`, (tr) => tr.dataset.state)
      .catch(() => null);
}

async function main() {
  const env = devUp();
  const url = env.CONVEYOR_DEV_DASHBOARD;
  check(/^https:\/\/127\.0\.0\.1:\d+\/$/.test(url), `dev-up serves the dashboard at ${url}`);
  const args = [
    // Chromium's sandbox needs user namespaces, which a container or root
    // does not give it: as root, run without (docs/testing.md).
    ...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
    `--ignore-certificate-errors-spki-list=${spki(path.join(state, 'tls', 'orchestrator.pem'))}`,
    // Loopback only: no name resolves, so background services reach nothing.
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    '--disable-background-networking', '--disable-component-update', '--no-first-run',
    '--disable-dev-shm-usage',
  ];
  const browser = await puppeteer.launch({executablePath: CHROMIUM, headless: true, args});
  const problems = [];
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    await page.setViewport({width: 1280, height: 860});
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A CSP violation ("Refused to ...") or a script error is a failure;
      // HTTP statuses are not (the 401 before login, the 404 of an image
      // no longer kept): the checks here look at those themselves.
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) {
        problems.push(m.text());
      }
    });

    await page.goto(url);
    await page.waitForSelector('#login:not([hidden])');
    check(true, 'without a session the login form shows');
    await page.type('#token', 'not-a-token');
    await page.click('#login-form button');
    await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '');
    check(await page.$eval('#login-error', (e) => e.textContent.includes('UNAUTHENTICATED')),
          'a bad token is refused');
    await page.$eval('#token', (e) => { e.value = ''; });
    await page.type('#token', env.CONVEYOR_TOKEN);
    await page.click('#login-form button');
    await page.waitForSelector('#app:not([hidden])');
    check(await page.$eval('#who', (e) => e.textContent.startsWith('dev')), 'logged in as dev');
    // Gone if the page ever reloads: everything after this must come live.
    await page.evaluate(() => { window.conveyorTestMarker = 'still here'; });
    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === 'conveyor_session');
    check(session && session.httpOnly && session.secure && session.sameSite === 'Strict',
          'the session cookie is HttpOnly, Secure, SameSite=Strict');
    check(await page.evaluate(() => !document.cookie.includes('conveyor_session')),
          'scripts cannot read the session cookie');
    await page.waitForSelector('#stages tr[data-stage="resize"] .state.SERVING');
    check(true, 'stage health shows resize SERVING');

    // A chain that succeeds, seen to appear and finish without a reload.
    const photos = env.CONVEYOR_DEV_PHOTOS;
    const good = submit(env, ['--url', `${photos}/Aqua.jpg`, '--resize', '320x', '--filter',
                              'sepia', '--upload', `file://${env.CONVEYOR_DEV_OUT}`,
                              '--label', 'run=browser-test', '--label', 'team=<b>vision</b>']);
    await page.waitForFunction(
        (id) => document.querySelector(`#chain-table tr[data-chain="${id}"]`), {}, good);
    check(true, `chain ${good} appeared live`);
    await page.waitForFunction((id) => {
      const tr = document.querySelector(`#chain-table tr[data-chain="${id}"]`);
      return tr && tr.dataset.state === 'SUCCEEDED';
    }, {}, good);
    check(true, `chain ${good} finished live (SUCCEEDED)`);
    check(await page.$eval(`#chain-table tr[data-chain="${good}"] .labels`,
                           (td) => td.textContent.includes('team=<b>vision</b>') &&
                                   td.querySelector('b') === null),
          'a label with markup shows as text, not HTML');

    // Two more: one fails at once (404), one keeps retrying a webhook to
    // a port where nothing listens (60 s backoff) with its images kept.
    const failed = submit(env, ['--url', `${photos}/no-such-photo.jpg`, '--resize', '200x',
                                '--label', 'run=browser-test']);
    const specFile = path.join(state, 'retrying.json');
    fs.writeFileSync(specFile, JSON.stringify({
      steps: [
        {download: {url: `${photos}/Dune.jpg`}},
        {resize: {width: 360}},
        {filter: {ops: [{grayscale: {}}]}},
        {webhook: {url: 'http://127.0.0.1:9/hook'},
         retry: {maxAttempts: 20, initialBackoff: '60s', maxBackoff: '60s'}},
      ],
      labels: {run: 'browser-test', kind: 'retrying'},
    }));
    const retrying = submit(env, ['--spec', specFile]);
    await page.waitForFunction((a, b) => {
      const s = (id) => (document.querySelector(`#chain-table tr[data-chain="${id}"]`) || {})
                            .dataset;
      return s(a) && s(a).state === 'FAILED' && s(b) && s(b).state === 'RETRYING';
    }, {}, failed, retrying);
    check(true, `chain ${failed} FAILED and ${retrying} is RETRYING, live`);

    // Filters: the state and the label.
    await page.select('#filters select[name="state"]', 'FAILED');
    await page.click('#filters button');
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('#chain-table tr[data-chain]')];
      return rows.length > 0 && rows.every((r) => r.dataset.state === 'FAILED') &&
             rows.some((r) => r.dataset.chain === id);
    }, {}, failed);
    check(true, 'state=FAILED shows only failed chains');
    await page.select('#filters select[name="state"]', '');
    await page.type('#filters input[name="label"]', 'kind=retrying');
    await page.click('#filters button');
    await page.waitForFunction((id) => {
      const rows = [...document.querySelectorAll('#chain-table tr[data-chain]')];
      return rows.length === 1 && rows[0].dataset.chain === id;
    }, {}, retrying);
    check(true, 'label=kind=retrying shows only that chain');
    await page.$eval('#filters input[name="label"]', (e) => { e.value = 'run=browser-test'; });
    await page.click('#filters button');
    await page.waitForFunction(() => document.querySelectorAll('#chain-table tr[data-chain]')
                                         .length === 3);
    await new Promise((r) => setTimeout(r, 2500));  // a few status samples for the sparklines
    if (shots) await page.screenshot({path: path.join(shots, 'dashboard.png')});

    // The retrying chain's timeline: steps, attempts, thumbnails; cancel.
    await page.click(`#chain-table tr[data-chain="${retrying}"] a.chain-link`);
    await page.waitForSelector('#detail:not([hidden]) #timeline tr[data-step="3"]');
    await page.waitForFunction(() => {
      const img = document.querySelector('#timeline tr[data-step="1"] img.thumb');
      return img && img.complete && img.naturalWidth === 360;
    });
    check(true, 'the timeline shows the resized image (360 px wide) as a thumbnail');
    check(await page.$eval('#timeline tr[data-step="3"]',
                           (tr) => tr.textContent.includes('RETRYING') &&
                                   tr.textContent.includes('next attempt')),
          'the webhook step is RETRYING with its next attempt time');
    if (shots) {
      await (await page.$('#detail')).screenshot({path: path.join(shots, 'dashboard-timeline.png')});
    }
    await page.click('#cancel');
    await page.waitForFunction(() => document.querySelector('#detail-state').textContent ===
                                     'CANCELLED');
    await page.waitForFunction(() => [...document.querySelectorAll('#events li')]
                                         .some((li) => li.textContent.includes('CHAIN_CANCELLED')));
    check(true, 'Cancel cancelled the retrying chain (CHAIN_CANCELLED event by dev)');

    // The failed chain: retry it; it runs (and fails) again, live.
    await page.evaluate((id) => { location.hash = `#/chains/${id}`; }, failed);
    await page.waitForFunction(() => document.querySelector('#detail-state').textContent ===
                                     'FAILED');
    check(await page.$eval('#timeline tr[data-step="0"]',
                           (tr) => tr.textContent.includes('NOT_FOUND') ||
                                   tr.textContent.includes('404')),
          'the failed step shows its error');
    await page.click('#retry');
    await page.waitForFunction(() => [...document.querySelectorAll('#events li')]
                                         .some((li) => li.textContent.includes('CHAIN_RESUMED')));
    await page.waitForFunction(() => document.querySelector('#detail-state').textContent ===
                                     'FAILED' &&
                                     document.querySelector('#detail-meta').textContent
                                         .includes('retries1'));
    check(true, 'Retry resumed the failed chain, which failed again (retries 1)');

    check(await page.evaluate(() => window.conveyorTestMarker === 'still here'),
          'the page never reloaded: every change came over server-sent events');
    check(problems.length === 0, `no script errors or CSP violations ${problems.join('; ')}`);
  } finally {
    await browser.close();
  }
}

main().then(() => {
  devDown();
  fs.rmSync(state, {recursive: true, force: true});
  console.log('PASS');
}, (e) => {
  console.error(`FAIL: ${e.stack || e}`);
  console.error(`logs kept in ${state}/logs`);
  execFileSync(path.join(root, 'tools', 'dev-down.sh'), ['--state-dir', state, '--keep-logs'],
               {stdio: 'inherit'});
  process.exit(1);
});
