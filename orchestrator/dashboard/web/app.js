// The Conveyor dashboard: plain JavaScript, no framework, no external code.
// Everything shown is put in the page as text (textContent, text nodes),
// never as HTML: labels, errors and URLs are user input. Live updates come
// over server-sent events (EventSource); nothing here polls.
'use strict';

const HISTORY_POINTS = 300;  // what the server keeps: 2 s samples, 10 minutes
let overview = null;         // EventSource of the list and health
let chainStream = null;      // EventSource of the open chain
let history = [];            // status samples, oldest first
let current = null;          // the chain shown in the detail view

const $ = (id) => document.getElementById(id);

// el('td', {class: 'x'}, 'text', child...): an element with text children.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

const STAGES = ['download', 'resize', 'filter', 'upload', 'webhook'];
const stageName = (kind) => (kind || '').replace('STAGE_KIND_', '').toLowerCase();
const shortId = (name) => (name || '').replace('chains/', '').slice(0, 12);
const chainId = (name) => (name || '').replace('chains/', '');

function time(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return isNaN(d) ? '' : d.toLocaleTimeString();
}

// Protobuf JSON durations are "1.234s".
function seconds(duration) {
  return duration ? parseFloat(duration) : NaN;
}

function took(start, end) {
  if (!start || !end) return '';
  return formatSeconds((new Date(end) - new Date(start)) / 1000);
}

function formatSeconds(s) {
  if (isNaN(s)) return '';
  if (s < 1) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  return `${(s / 60).toFixed(1)} min`;
}

function errorText(error) {
  if (!error) return '';
  const reason = (error.details || []).map((d) => d.reason).filter(Boolean)[0];
  return reason ? `${reason}: ${error.message || ''}` : (error.message || `code ${error.code}`);
}

function stateBadge(state) {
  return el('span', {class: `state ${state || ''}`}, state || '');
}

async function api(method, path, body) {
  const init = {method, credentials: 'same-origin', headers: {}};
  if (method !== 'GET') {
    // The CSRF guard (docs/security.md): a cross-site page cannot send it.
    init.headers['X-Conveyor-Dashboard'] = '1';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, init);
  const json = await response.json().catch(() => ({}));
  if (response.status === 401) showLogin(json.message || 'log in');
  if (!response.ok) throw new Error(`${json.code || response.status}: ${json.message || ''}`);
  return json;
}

// --- login -----------------------------------------------------------------

function showLogin(message) {
  stopStreams();
  $('app').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message && message !== 'log in' ? message : '';
}

async function start() {
  try {
    const me = await api('GET', '/api/whoami');
    showApp(me);
  } catch (e) {
    // whoami's 401 already showed the login form.
    if (!$('login').hidden) return;
    showLogin(e.message);
  }
}

function showApp(me) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${me.principal} (tenant ${me.tenant})`;
  $('retry').hidden = $('cancel').hidden = !(me.scopes || []).includes('chains.cancel');
  openOverview();
  route();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    const me = await api('POST', '/api/login', {token: $('token').value});
    $('token').value = '';
    showApp(me);
  } catch (e) {
    $('login-error').textContent = e.message;
  }
});

$('logout').addEventListener('click', async () => {
  await api('POST', '/api/logout').catch(() => {});
  showLogin('');
});

// --- the list and health (one stream) --------------------------------------

function filterQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($('filters'))) {
    if (String(v).trim()) params.append(k, String(v).trim());
  }
  return params.toString();
}

function stopStreams() {
  if (overview) overview.close();
  if (chainStream) chainStream.close();
  overview = chainStream = null;
  setLive(false);
}

function setLive(on) {
  $('live').textContent = on ? 'live' : 'offline';
  $('live').className = `live ${on ? 'on' : 'off'}`;
}

function openOverview() {
  if (overview) overview.close();
  history = [];
  overview = new EventSource(`/api/stream?${filterQuery()}`);
  overview.onopen = () => setLive(true);
  overview.addEventListener('chains', (e) => {
    $('list-error').textContent = '';
    renderChains(JSON.parse(e.data));
  });
  overview.addEventListener('status', (e) => renderStatus(JSON.parse(e.data)));
  overview.addEventListener('error', (e) => {
    if (e.data) {
      $('list-error').textContent = errorText(JSON.parse(e.data));
      return;
    }
    setLive(false);
    // A refused stream (401, bad filter) is not retried by EventSource.
    if (overview.readyState === EventSource.CLOSED) start();
  });
}

$('filters').addEventListener('submit', (event) => {
  event.preventDefault();
  // A bad filter is an HTTP 400 the EventSource cannot read: ask once.
  api('GET', `/api/chains?${filterQuery()}&page_size=1`)
      .then(() => { $('list-error').textContent = ''; openOverview(); })
      .catch((e) => { $('list-error').textContent = e.message; });
});

function currentStep(chain) {
  const steps = chain.steps || [];
  const s = steps.find((x) => x.state !== 'SUCCEEDED');
  return s ? `${s.index + 1}/${steps.length} ${stageName(s.kind)}` : '';
}

function renderChains(page) {
  const body = $('chain-table').tBodies[0];
  clear(body);
  for (const chain of page.chains || []) {
    const labels = el('td', {class: 'labels'});
    for (const [k, v] of Object.entries((chain.spec || {}).labels || {})) {
      labels.append(el('span', {}, `${k}=${v}`));
    }
    const link = el('a', {href: `#/chains/${chainId(chain.name)}`, class: 'chain-link'},
                    shortId(chain.name));
    body.append(el('tr', {'data-chain': chainId(chain.name), 'data-state': chain.state},
        el('td', {}, link), el('td', {}, stateBadge(chain.state)),
        el('td', {}, `${chain.progressPercent}%`), el('td', {}, currentStep(chain)), labels,
        el('td', {}, time(chain.createTime)), el('td', {}, took(chain.createTime, chain.endTime)),
        el('td', {class: 'error'}, errorText(chain.error))));
  }
  if (!(page.chains || []).length) {
    body.append(el('tr', {}, el('td', {colspan: 8, class: 'muted'}, 'no chains match')));
  }
}

function sparkline(points) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', '0 0 240 32');
  const max = Math.max(1, ...points);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  const step = points.length > 1 ? 240 / (points.length - 1) : 0;
  line.setAttribute('points',
      points.map((v, i) => `${(i * step).toFixed(1)},${(31 - (v / max) * 30).toFixed(1)}`)
          .join(' '));
  svg.append(line);
  const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
  title.textContent = `max ${max} queued`;
  svg.append(title);
  return svg;
}

function renderStatus(status) {
  history = history.concat(status.history || []).slice(-HISTORY_POINTS);
  const now = status.current;
  if (!now) return;
  const body = $('stages').tBodies[0];
  clear(body);
  for (const stage of now.stages || []) {
    const name = stageName(stage.kind);
    const depth = history.map((h) => ((h.stages || {})[name] || {}).queued || 0);
    body.append(el('tr', {'data-stage': name},
        el('td', {}, name), el('td', {title: stage.healthDetail || ''}, stateBadge(stage.health)),
        el('td', {}, stage.queued), el('td', {}, `${stage.inFlight} / ${stage.maxInFlight}`),
        el('td', {}, stage.waiting), el('td', {}, sparkline(depth))));
  }
  const replicas = (now.replicas || []).map((r) => `${r.name} (${r.address}, ${r.inFlight} in flight)`);
  $('replicas').textContent =
      `Redis ${now.redisReachable ? 'reachable' : 'UNREACHABLE'}` +
      (replicas.length ? ` · replicas: ${replicas.join(', ')}` : '');
}

// --- one chain -------------------------------------------------------------

function route() {
  const match = /^#\/chains\/([0-9a-f]{32})$/.exec(location.hash);
  if (chainStream) chainStream.close();
  chainStream = null;
  current = null;
  $('detail').hidden = !match;
  $('chains').hidden = !!match;
  if (match) openChain(match[1]);
}
window.addEventListener('hashchange', route);

function openChain(id) {
  clear($('events'));
  $('detail-error').textContent = '';
  chainStream = new EventSource(`/api/chains/${id}/events`);
  chainStream.addEventListener('chain', (e) => renderChain(JSON.parse(e.data)));
  chainStream.addEventListener('step-event', (e) => appendEvent(JSON.parse(e.data)));
  // A chain that ended sends no more; a retry opens a new stream.
  chainStream.addEventListener('end', () => chainStream.close());
  chainStream.addEventListener('error', (e) => {
    if (e.data) $('detail-error').textContent = errorText(JSON.parse(e.data));
    if (chainStream && chainStream.readyState === EventSource.CLOSED) {
      api('GET', `/api/chains/${id}`).then(renderChain)
          .catch((err) => { $('detail-error').textContent = err.message; });
    }
  });
}

function appendEvent(event) {
  const step = event.type.startsWith('STEP_') ? ` step ${event.stepIndex + 1}` : '';
  const why = event.error ? ` ${errorText(event.error)}` : '';
  const who = event.actor && event.actor.principal ? ` by ${event.actor.principal}` : '';
  $('events').append(el('li', {}, `${time(event.time)} ${event.type}${step}${who}${why}`));
}

function specSummary(step) {
  if (step.download) return `download ${step.download.url}`;
  if (step.resize) return `resize ${step.resize.width || ''}x${step.resize.height || ''}`;
  if (step.filter) return `filter ${(step.filter.ops || []).map((o) => Object.keys(o)[0]).join(', ')}`;
  if (step.upload) return `upload ${step.upload.destination}`;
  if (step.webhook) return `webhook ${step.webhook.url}`;
  return '';
}

function outputCell(chain, step) {
  const cell = el('td', {});
  const out = step.output || {};
  if (out.image) {
    cell.append(`${out.image.mediaType} ${out.image.width}×${out.image.height}, ` +
                `${out.image.sizeBytes} bytes`);
    const img = el('img', {class: 'thumb', alt: `output of step ${step.index + 1}`,
                           src: `/api/chains/${chainId(chain.name)}/steps/${step.index}/image`});
    img.addEventListener('error', () => img.replaceWith(el('div', {class: 'muted'},
        'image not kept (deleted when a chain succeeds)')));
    cell.append(img);
  } else if (out.storedObject) {
    cell.append(`stored ${out.storedObject.uri} (${out.storedObject.sizeBytes} bytes)`);
  } else if (out.delivery) {
    cell.append(`delivered: HTTP ${out.delivery.httpStatus}, ${out.delivery.attempts} attempt(s)`);
  }
  return cell;
}

function renderChain(chain) {
  current = chain;
  $('detail-name').textContent = shortId(chain.name);
  $('detail-state').textContent = chain.state;
  $('detail-state').className = `state ${chain.state}`;
  $('retry').disabled = chain.state !== 'FAILED' && chain.state !== 'CANCELLED';
  $('cancel').disabled = ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(chain.state);
  const meta = $('detail-meta');
  clear(meta);
  const labels = Object.entries((chain.spec || {}).labels || {}).map(([k, v]) => `${k}=${v}`);
  for (const [k, v] of [['name', chain.name], ['tenant', chain.tenant],
                        ['submitted by', chain.principal], ['created', chain.createTime],
                        ['ended', chain.endTime], ['took', took(chain.createTime, chain.endTime)],
                        ['labels', labels.join(', ')], ['retries', chain.retries],
                        ['note', chain.resumeNote], ['error', errorText(chain.error)]]) {
    if (v === undefined || v === '' || v === null) continue;
    meta.append(el('dt', {}, k), el('dd', {}, v));
  }
  const body = $('timeline').tBodies[0];
  clear(body);
  (chain.steps || []).forEach((step, i) => {
    const spec = ((chain.spec || {}).steps || [])[i] || {};
    const notes = [];
    if (step.waitingSince) notes.push(`waiting since ${time(step.waitingSince)}: ${step.waitingReason}`);
    if (step.deferrals) notes.push(`${step.deferrals} deferral(s): worker busy`);
    if (step.nextAttemptTime) notes.push(`next attempt ${time(step.nextAttemptTime)}`);
    if (step.error) notes.push(errorText(step.error));
    body.append(el('tr', {'data-step': step.index},
        el('td', {}, step.index + 1),
        el('td', {class: 'url'}, specSummary(spec)),
        el('td', {}, stateBadge(step.state)),
        el('td', {}, step.attempts),
        el('td', {}, time(step.startTime)),
        el('td', {}, formatSeconds(seconds(step.duration)) || took(step.startTime, step.endTime)),
        el('td', {}, step.worker),
        el('td', {class: 'error'}, notes.join(' · ')),
        outputCell(chain, step)));
  });
}

async function act(action) {
  if (!current) return;
  $('detail-error').textContent = '';
  try {
    const chain = await api('POST', `/api/chains/${chainId(current.name)}/${action}`);
    renderChain(chain);
    // A retried chain goes on: follow it again from its next events.
    if (action === 'retry') openChain(chainId(chain.name));
  } catch (e) {
    $('detail-error').textContent = e.message;
  }
}
$('retry').addEventListener('click', () => act('retry'));
$('cancel').addEventListener('click', () => act('cancel'));

start();
