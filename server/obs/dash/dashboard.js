// llmgate dashboard: vanilla ES2020, no dependencies, CSP-safe. Received strings
// reach the DOM only via textContent / setAttribute, never innerHTML.
'use strict';
(() => {
  const $ = (s, r = document) => r.querySelector(s);
  const $$ = (s, r = document) => Array.from(r.querySelectorAll(s));
  const NS = 'http://www.w3.org/2000/svg', TOKEN_KEY = 'llmgate-admin-token';
  const POLL_MS = 2000, SESSION_MS = 30000, DAY = 86400000;
  const RANGES = ['1h', '6h', '24h', '7d', '30d', '90d'];
  const RO_TITLE = 'read-only: no admin token configured';
  const S = { range: '1h', model: '', metric: 'cost', period: 'days', session: null, sessionAt: 0, stats: null,
    names: [], timer: 0, running: false, again: false, paused: false, lastOk: 0, busy: false, evSig: '', tok: '' };

  // == helpers
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function sv(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const num = (v) => (isNum(v) ? v : 0);
  const str = (v) => (v == null ? '' : String(v));
  const fInt = (v) => (isNum(v) ? Math.round(v).toLocaleString('en-US') : '–');
  const fPct = (r) => (isNum(r) ? (r * 100).toFixed(1) + '%' : '–');
  const fMs = (v) => (isNum(v) ? String(Math.round(v)) : '–');
  const fCost = (v) => (isNum(v) ? '$' + v.toLocaleString('en-US', { minimumFractionDigits: 4, maximumFractionDigits: 4 }) : '–');
  const fRate = (v) => (isNum(v) ? v.toFixed(v < 10 ? 3 : 1) : '–');
  function fShort(v) {
    const a = Math.abs(v);
    for (const [d, u] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'k']]) {
      if (a >= d) return +(v / d).toFixed(a >= d * 100 ? 0 : a >= d * 10 ? 1 : 2) + u;
    }
    return String(+v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 3));
  }
  const fBig = (v) => (isNum(v) && v >= 1e5 ? fShort(v) : fInt(v));
  const fLim = (u, l, f = fInt) => f(u) + '/' + (l ? f(l) : '∞');
  function fDur(ms) {
    if (!isNum(ms) || ms <= 0) return '';
    let s = Math.ceil(ms / 1000);
    if (s < 60) return s + 's';
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    s %= 60;
    return d ? d + 'd ' + h + 'h' : h ? h + 'h ' + m + 'm' : m + 'm ' + s + 's';
  }
  const p2 = (n) => String(n).padStart(2, '0');
  const MON = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const fHM = (t) => { const d = new Date(t); return p2(d.getHours()) + ':' + p2(d.getMinutes()); };
  const fClock = (t) => fHM(t) + ':' + p2(new Date(t).getSeconds());
  const fDay = (t) => { const d = new Date(t); return MON[d.getMonth()] + ' ' + d.getDate(); };
  function fStamp(t) {
    if (!isNum(t) || t <= 0) return '–';
    const d = new Date(t);
    if (d.toDateString() === new Date().toDateString()) return fClock(t);
    return d.getFullYear() + '-' + p2(d.getMonth() + 1) + '-' + p2(d.getDate()) + ' ' + fClock(t);
  }
  function getTok() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return S.tok; } }
  function setTok(t) {
    S.tok = t;
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* memory only */ }
  }

  // == tables
  const NUMERIC = new Set(['cooldown', 'rpm', 'rpd', 'tpm', 'inflight', 'p50', 'p95', 'p99', 'error_rate', 'requests', 'tokens', 'cost', 'keys']);
  const KEY_FIELDS = ['name', 'provider', 'state', 'reason', 'cooldown', 'rpm', 'rpd', 'tpm', 'inflight', 'p50', 'p95', 'p99',
    'error_rate', 'requests', 'tokens', 'cost', 'actions'];
  const PROV_FIELDS = ['name', 'circuit', 'keys', 'requests', 'error_rate'];
  const TONE = { active: 'good', cooling: 'warn', half_open: 'warn', disabled: 'bad', invalid: 'bad', depleted: 'bad',
    orphaned: 'off', closed: 'good', open: 'bad' };

  function set(td, text, value, title) {
    if (td.textContent !== text) td.textContent = text;
    td.setAttribute('data-value', str(value));
    if (title !== undefined) td.title = title;
  }
  function setState(td, state, text, tags) {
    const st = str(state), t = TONE[st];
    td.className = 'st-' + (t || 'off') + (t ? ' state-' + st : '');
    td.setAttribute('data-value', st);
    const sig = [st, text, ...tags].join('\u0000');
    if (td._sig === sig) return;
    td._sig = sig;
    td.replaceChildren(el('span', 'state', st));
    if (text && text !== st) td.appendChild(el('span', 'sub', text));
    for (const g of tags) td.appendChild(el('span', 'tag', g));
  }
  function emptyRow(tb, n, text) {
    const tr = el('tr'), td = el('td', 'empty', text);
    td.colSpan = n;
    tr.appendChild(td);
    tb.appendChild(tr);
  }
  // update rows in place (keyed by attr) so buttons and hover survive polls
  function syncTable(table, attr, items, fields, build, fill, empty) {
    const tb = table.tBodies[0], have = new Map();
    for (const tr of Array.from(tb.rows)) {
      const k = tr.getAttribute(attr);
      if (k == null || have.has(k) || !tr._c) tr.remove(); else have.set(k, tr);
    }
    let prev = null;
    for (const it of items) {
      const name = str(it.name);
      let tr = have.get(name);
      if (tr) have.delete(name);
      else {
        tr = el('tr');
        tr.setAttribute(attr, name);
        tr._c = {};
        for (const f of fields) {
          const td = tr.appendChild(el('td', NUMERIC.has(f) ? 'num' : ''));
          td.setAttribute('data-field', f);
          tr._c[f] = td;
        }
        if (build) build(tr);
      }
      fill(tr, it);
      const want = prev ? prev.nextSibling : tb.firstChild;
      if (want !== tr) tb.insertBefore(tr, want);
      prev = tr;
    }
    have.forEach((tr) => tr.remove());
    if (!items.length) emptyRow(tb, fields.length, empty);
  }
  function buildKeyRow(tr) {
    for (const [a, label] of [['cooldown', 'Cooldown'], ['disable', 'Disable'], ['enable', 'Enable']]) {
      const b = tr._c.actions.appendChild(el('button', '', label));
      b.type = 'button';
      b.setAttribute('data-action', a);
    }
  }
  function fillKey(tr, k) {
    const c = tr._c, lim = Array.isArray(k.limited_by) ? k.limited_by.map(String) : [], lat = k.latency_ms || {}, tags = [];
    if (k.orphaned && k.state !== 'orphaned') tags.push('orphaned');
    if (lim.includes('circuit')) tags.push('circuit');
    set(c.name, str(k.name), k.name, 'fingerprint ' + str(k.fingerprint) + ', weight ' + str(k.weight));
    set(c.provider, str(k.provider), k.provider);
    setState(c.state, k.state, str(k.status_text), tags);
    c.state.title = 'since ' + fStamp(k.status_since_ms);
    set(c.reason, k.reason === 'none' ? '' : str(k.reason), k.reason,
      k.last_error_code ? 'last error ' + k.last_error_code + ' at ' + fStamp(k.last_error_ms) : '');
    set(c.cooldown, fDur(k.cooldown_left_ms), k.cooldown_left_ms);
    set(c.rpm, fLim(k.rpm_used, k.rpm_limit), k.rpm_used);
    set(c.rpd, fLim(k.rpd_used, k.rpd_limit), k.rpd_used, k.rpd_resets_at_ms ? 'resets ' + fStamp(k.rpd_resets_at_ms) : '');
    set(c.tpm, fLim(k.tpm_used, k.tpm_limit, fBig), k.tpm_used);
    set(c.inflight, fLim(k.inflight, k.max_inflight), k.inflight);
    for (const f of ['rpm', 'rpd', 'tpm', 'inflight']) c[f].classList.toggle('limited', lim.includes(f));
    for (const f of ['p50', 'p95', 'p99']) set(c[f], fMs(lat[f]), lat[f], str(lat.samples) + ' samples');
    set(c.error_rate, fPct(k.error_rate), k.error_rate, fInt(k.errors) + ' errors / ' + fInt(k.outcomes_total) + ' outcomes');
    set(c.requests, fInt(k.requests), k.requests);
    set(c.tokens, fBig(k.tokens), k.tokens, fInt(k.tokens) + ': prompt ' + fInt(k.prompt_tokens) + ', completion ' + fInt(k.completion_tokens));
    set(c.cost, fCost(k.cost_usd), k.cost_usd);
    const off = !!(S.session && S.session.actions === false);
    for (const b of c.actions.children) {
      b.disabled = off;
      b.title = off ? RO_TITLE : b.getAttribute('data-action') + ' ' + k.name;
    }
  }
  function fillProv(tr, p) {
    const c = tr._c;
    set(c.name, str(p.name), p.name);
    setState(c.circuit, p.circuit, str(p.circuit_text), []);
    set(c.keys, fInt(p.keys_available) + '/' + fInt(p.keys), p.keys_available);
    set(c.requests, fInt(p.requests), p.requests);
    set(c.error_rate, fPct(p.error_rate), p.error_rate, fInt(p.errors) + ' errors / ' + fInt(p.outcomes_total) + ' outcomes');
  }
  function renderEvents(list) {
    const sig = JSON.stringify(list);
    if (sig === S.evSig) return;
    S.evSig = sig;
    const tb = $('#events').tBodies[0];
    tb.replaceChildren();
    for (const e of list) {
      const tr = tb.appendChild(el('tr'));
      tr.setAttribute('data-event', str(e.event));
      for (const [f, t, v] of [['time', fStamp(e.ts_ms), e.ts_ms], ['key', e.key], ['event', e.event], ['status', e.status],
        ['reason', e.reason === 'none' ? '' : e.reason, e.reason], ['text', e.text]]) {
        const td = tr.appendChild(el('td', '', str(t)));
        td.setAttribute('data-field', f);
        td.setAttribute('data-value', str(v === undefined ? t : v));
      }
    }
    if (!list.length) emptyRow(tb, 6, 'no events');
  }

  // == stats
  const allSeries = () => (S.stats && Array.isArray(S.stats.series) ? S.stats.series : []);
  const shown = () => allSeries().map((s, i) => ({ s, ci: i % 8 })).filter((x) => !S.model || x.s.name === S.model);
  function renderModels() {
    const names = allSeries().map((s) => str(s.name));
    if (S.model && !names.includes(S.model)) names.push(S.model);
    if (names.join('\u0000') === S.names.join('\u0000')) return;
    S.names = names;
    const sel = $('#model'), all = el('option', '', 'All models');
    all.value = '';
    sel.replaceChildren(all, ...names.map((n) => { const o = el('option', '', n); o.value = n; return o; }));
    sel.value = S.model;
  }
  function renderTotals() {
    const t = { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 };
    for (const { s } of shown()) for (const k in t) t[k] += num((s.total || {})[k]);
    const er = t.requests ? t.errors / t.requests : null, none = !S.stats;
    const vals = { requests: [fInt, t.requests], errors: [fInt, t.errors], error_rate: [fPct, er],
      prompt_tokens: [fInt, t.prompt_tokens], completion_tokens: [fInt, t.completion_tokens], cost: [fCost, t.cost_usd] };
    for (const f in vals) set($('#totals [data-field="' + f + '"]'), none ? '–' : vals[f][0](vals[f][1]), none ? null : vals[f][1]);
  }
  // x axis: every step from from_ms to to_ms (points are dense); fall back to the first series' t_ms
  function axis() {
    const d = S.stats, ts = [];
    if (!d) return ts;
    if (isNum(d.from_ms) && isNum(d.to_ms) && d.step_ms > 0 && (d.to_ms - d.from_ms) / d.step_ms <= 20000) {
      for (let t = d.from_ms; t < d.to_ms; t += d.step_ms) ts.push(t);
    } else for (const p of (allSeries()[0] || {}).points || []) ts.push(p.t_ms);
    return ts;
  }
  function nice(max, n) {
    if (!(max > 0)) max = 1;
    const r = max / n, mag = 10 ** Math.floor(Math.log10(r)), f = r / mag;
    const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag, t = [];
    for (let i = 0; i * step <= Math.ceil(max / step - 1e-9) * step + step / 2; i++) t.push(i * step);
    return { t, step, top: t[t.length - 1] };
  }
  function fTick(v, step, pre) {
    if (v >= 1000) return pre + fShort(v);
    let d = 0;
    while (d < 6 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-9) d++;
    return pre + v.toFixed(d);
  }
  const TSTEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200].map((m) => m * 60000);
  function timeTicks(t0, t1, max) {
    const off = -new Date(t0).getTimezoneOffset() * 60000, out = [];
    const st = TSTEPS.find((s) => (t1 - t0) / s <= max) || TSTEPS[TSTEPS.length - 1];
    for (let t = Math.ceil((t0 + off) / st) * st - off; t <= t1; t += st) out.push(t);
    return { out, fmt: st >= DAY ? fDay : (t) => (fHM(t) === '00:00' && t1 - t0 > DAY ? fDay(t) : fHM(t)) };
  }
  function frame(svg) {
    svg.replaceChildren();
    svg._lay = null;
    const W = Math.max(200, Math.round(svg.clientWidth || 600)), H = Math.max(100, Math.round(svg.clientHeight || 190));
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    return { W, H, L: 46, R: 10, T: 8, B: 20, pw: W - 56, ph: H - 28 };
  }
  function noData(svg, g) {
    sv('text', { x: g.W / 2, y: g.H / 2, 'text-anchor': 'middle', class: 'nodata' }, svg).textContent = S.stats ? 'no data' : 'loading…';
    legend(svg, []);
    hover(svg);
  }
  function yAxis(svg, g, max, pre) {
    const n = nice(max, Math.max(2, Math.min(5, Math.floor(g.ph / 32)))), y = (v) => g.T + g.ph * (1 - v / n.top);
    for (const v of n.t) {
      const yy = Math.round(y(v)) + 0.5;
      sv('line', { x1: g.L, x2: g.W - g.R, y1: yy, y2: yy, class: v ? 'gl' : 'ax' }, svg);
      sv('text', { x: g.L - 6, y: yy + 3, 'text-anchor': 'end' }, svg).textContent = fTick(v, n.step, pre);
    }
    return y;
  }
  function xLabel(svg, g, x, text) {
    sv('text', { x: x.toFixed(1), y: g.H - 5, 'text-anchor': 'middle' }, svg).textContent = text;
  }
  function legend(svg, items) {
    const lg = svg.nextElementSibling, sig = items.map((i) => i.cls + ':' + i.label).join('\u0000');
    if (!lg || lg._sig === sig) return;
    lg._sig = sig;
    lg.replaceChildren(...items.map((i) => { const s = el('span'); s.append(el('span', 'sw ' + i.cls), str(i.label)); return s; }));
  }
  function hitArea(svg, g, lay) {
    sv('rect', { x: g.L, y: g.T, width: g.pw, height: g.ph, class: 'hit' }, svg);
    svg._lay = Object.assign({ W: g.W }, lay);
    hover(svg);
  }

  // lines: [{label, cls, vals: [number|null]}]; o: {fmt, area, extra(i) -> rows}
  function lineChart(svg, ts, lines, o) {
    const g = frame(svg), n = ts.length;
    const max = lines.reduce((m, l) => l.vals.reduce((a, v) => (isNum(v) && v > a ? v : a), m), -Infinity);
    if (!n || max === -Infinity) return noData(svg, g);
    const y = yAxis(svg, g, max, ''), x = (i) => g.L + (n > 1 ? (i / (n - 1)) * g.pw : g.pw / 2);
    const t0 = ts[0], t1 = ts[n - 1], tk = timeTicks(t0, t1, Math.max(2, Math.floor(g.pw / 70)));
    for (const t of tk.out) xLabel(svg, g, g.L + (t1 > t0 ? ((t - t0) / (t1 - t0)) * g.pw : g.pw / 2), tk.fmt(t));
    const base = y(0).toFixed(1);
    for (const l of lines) {
      let d = '', a = '', seg = [];
      const flush = () => {
        if (seg.length && o.area && lines.length === 1) a += 'M' + seg[0][0] + ',' + base + 'L' + seg.join('L') + 'L' + seg[seg.length - 1][0] + ',' + base + 'Z';
        seg = [];
      };
      l.vals.forEach((v, i) => {
        if (!isNum(v)) return flush();
        const p = [x(i).toFixed(1), y(v).toFixed(1)];
        d += (seg.length ? 'L' : 'M') + p + (seg.length || isNum(l.vals[i + 1]) ? '' : 'h0.01'); // lone point: a dot
        seg.push(p);
      });
      flush();
      if (a) sv('path', { d: a, class: 'area ' + l.cls }, svg);
      if (d) sv('path', { d, class: 'series line ' + l.cls, 'data-label': str(l.label) }, svg);
    }
    legend(svg, lines);
    const cur = sv('line', { x1: 0, x2: 0, y1: g.T, y2: g.H - g.B, class: 'cursor', visibility: 'hidden' }, svg);
    hitArea(svg, g, {
      index: (px) => (px < g.L - 8 || px > g.W - g.R + 8 ? -1 : Math.max(0, Math.min(n - 1, Math.round(n > 1 ? ((px - g.L) / g.pw) * (n - 1) : 0)))),
      mark: (i) => {
        cur.setAttribute('visibility', i < 0 ? 'hidden' : 'visible');
        if (i >= 0) { cur.setAttribute('x1', x(i)); cur.setAttribute('x2', x(i)); }
      },
      title: (i) => {
        const st = (S.stats && S.stats.step_ms) || 60000;
        return st >= DAY ? fDay(ts[i]) + ' ' + new Date(ts[i]).getFullYear() : fDay(ts[i]) + ' ' + fHM(ts[i]) + '–' + fHM(ts[i] + st);
      },
      rows: (i) => lines.map((l) => [l.label, o.fmt(l.vals[i]), l.cls]).concat(o.extra ? o.extra(i) : []),
    });
  }
  // bars: [{...}], stacks: [{key, label, cls}]; o: {pre, labelW, label(b), title(b), rows(b)}
  function barChart(svg, bars, stacks, o) {
    const g = frame(svg), n = bars.length;
    if (!n) return noData(svg, g);
    const max = Math.max(0, ...bars.map((b) => stacks.reduce((a, s) => a + num(b[s.key]), 0)));
    const y = yAxis(svg, g, max, o.pre), bw = g.pw / n, gap = Math.min(6, bw * 0.25), every = Math.max(1, Math.ceil((o.labelW * n) / g.pw));
    const rects = bars.map((b, i) => {
      let acc = 0;
      if ((n - 1 - i) % every === 0) xLabel(svg, g, g.L + (i + 0.5) * bw, o.label(b));
      return stacks.map((s) => {
        const y1 = y(acc), y2 = y((acc += num(b[s.key])));
        return sv('rect', { x: (g.L + i * bw + gap / 2).toFixed(1), y: y2.toFixed(1), width: Math.max(1, bw - gap).toFixed(1),
          height: Math.max(0, y1 - y2).toFixed(1), class: 'series bar ' + s.cls }, svg);
      });
    });
    legend(svg, stacks);
    let hl = -1;
    hitArea(svg, g, {
      index: (px) => (px < g.L || px >= g.W - g.R ? -1 : Math.min(n - 1, Math.floor((px - g.L) / bw))),
      mark: (i) => {
        if (hl >= 0) rects[hl].forEach((r) => r.classList.remove('hl'));
        if ((hl = i) >= 0) rects[i].forEach((r) => r.classList.add('hl'));
      },
      title: (i) => o.title(bars[i]),
      rows: (i) => o.rows(bars[i]),
    });
  }
  // one tooltip for all charts; an <svg> persists across redraws, only svg._lay changes
  function hover(svg) {
    if (svg._hov) { if (svg._m) showTip(svg); return; }
    svg._hov = true;
    svg.addEventListener('mousemove', (e) => { svg._m = { x: e.clientX, y: e.clientY }; showTip(svg); });
    svg.addEventListener('mouseleave', () => { svg._m = null; if (svg._lay) svg._lay.mark(-1); $('#tooltip').hidden = true; });
  }
  function showTip(svg) {
    const tip = $('#tooltip'), L = svg._lay, m = svg._m;
    const r = svg.getBoundingClientRect(), i = L && m ? L.index(((m.x - r.left) * L.W) / (r.width || 1)) : -1;
    if (L) L.mark(i);
    if (i < 0) { tip.hidden = true; return; }
    tip.replaceChildren(el('div', 't', L.title(i)), ...L.rows(i).map(([k, v, cls]) => {
      const d = el('div');
      if (cls) d.appendChild(el('span', 'sw ' + cls));
      d.append(str(k), el('span', 'v', v));
      return d;
    }));
    tip.hidden = false;
    const box = $('#charts').getBoundingClientRect();
    let left = m.x - box.left + 14, top = m.y - box.top + 14;
    if (left + tip.offsetWidth > box.width - 4) left -= tip.offsetWidth + 28;
    if (top + tip.offsetHeight > box.height - 4) top -= tip.offsetHeight + 28;
    tip.style.left = Math.max(4, left) + 'px';
    tip.style.top = Math.max(4, top) + 'px';
  }

  const QCLS = { p50: 'c5', p95: 'c0', p99: 'c1' };
  function drawCharts() {
    const list = shown(), ts = list.length ? axis() : [], maps = list.map((x) => new Map((x.s.points || []).map((p) => [p.t_ms, p])));
    const stepS = ((S.stats && S.stats.step_ms) || 60000) / 1000, gen = S.stats && S.stats.generated_ms;
    const sum = (f) => ts.map((t) => maps.reduce((a, m) => a + num((m.get(t) || {})[f]), 0));
    const req = sum('requests'), err = sum('errors'), chart = (n) => $('svg.chart[data-chart="' + n + '"]');
    const label = S.model || 'all models', cls = S.model && list.length ? 'c' + list[0].ci : 'c0';
    // the newest bucket may still be filling: rate over its elapsed part, hidden while < 20% done
    const age = (t) => (isNum(gen) ? gen - t : Infinity), young = (t) => age(t) < stepS * 200;
    const rate = (v, t) => (young(t) ? null : v / (Math.min(age(t), stepS * 1000) / 1000));
    lineChart(chart('requests'), ts, [{ label, cls, vals: req.map((v, i) => rate(v, ts[i])) }],
      { area: true, fmt: fRate, extra: (i) => [['requests', fInt(req[i])]] });
    lineChart(chart('errors'), ts, [{ label, cls: 'c6', vals: req.map((v, i) => (v && !young(ts[i]) ? (err[i] / v) * 100 : null)) }],
      { area: true, fmt: (v) => (isNum(v) ? v.toFixed(1) + '%' : '–'), extra: (i) => [['errors', fInt(err[i]) + ' / ' + fInt(req[i])]] });
    for (const f of ['latency', 'ttfb']) {
      const q = (m, t, k) => ((m && m.get(t)) || {})[f + '_ms'] ? m.get(t)[f + '_ms'][k] : null, svg = chart(f);
      const lines = S.model
        ? ['p50', 'p95', 'p99'].map((k) => ({ label: k, cls: QCLS[k], vals: ts.map((t) => q(maps[0], t, k)) }))
        : list.map((x, j) => ({ label: x.s.name + ' p95', cls: 'c' + x.ci, vals: ts.map((t) => q(maps[j], t, 'p95')) }));
      svg.parentNode.querySelector('.sub').textContent = S.model ? '(p50 / p95 / p99)' : '(p95 per model)';
      lineChart(svg, ts, lines, { fmt: (v) => (isNum(v) ? fInt(v) + ' ms' : '–') });
    }
    // spend: the visible series' periods merged by start date
    const per = new Map(), F = ['requests', 'prompt_tokens', 'completion_tokens', 'tokens', 'cost_usd'];
    for (const { s } of list) {
      for (const b of Array.isArray(s[S.period]) ? s[S.period] : []) {
        const k = str(b.start), a = per.get(k) || { start: k, requests: 0, prompt_tokens: 0, completion_tokens: 0, tokens: 0, cost_usd: 0 };
        for (const f of F) a[f] += num(b[f]);
        per.set(k, a);
      }
    }
    const bars = Array.from(per.values()).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const months = S.period === 'months', tokens = S.metric === 'tokens';
    const lbl = (b) => {
      const m = /^(\d{4})-(\d\d)-(\d\d)/.exec(b.start);
      return !m ? b.start : MON[m[2] - 1] + (months ? (m[2] === '01' ? ' ' + m[1] : '') : ' ' + +m[3]);
    };
    barChart(chart('spend'), bars, tokens
      ? [{ key: 'prompt_tokens', label: 'prompt tokens', cls: 'c0' }, { key: 'completion_tokens', label: 'completion tokens', cls: 'c4' }]
      : [{ key: 'cost_usd', label: 'cost (USD)', cls: 'c2' }], {
      pre: tokens ? '' : '$', labelW: months ? 58 : 46, label: lbl,
      title: (b) => (S.period === 'weeks' ? 'week of ' : '') + (months ? b.start.slice(0, 7) : b.start) + ' (UTC)',
      rows: (b) => [['cost', fCost(b.cost_usd), 'c2'], ['requests', fInt(b.requests)],
        ['prompt tokens', fInt(b.prompt_tokens), tokens && 'c0'], ['completion tokens', fInt(b.completion_tokens), tokens && 'c4']],
    });
  }
  function renderStats() { renderModels(); renderTotals(); drawCharts(); }

  // == polling
  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
    const d = await r.json();
    if (!d || typeof d !== 'object') throw new Error(url + ': not an object');
    return d;
  }
  function applySession(d) {
    S.session = d;
    S.sessionAt = Date.now();
    $('#version').textContent = [d.version && 'v' + d.version, d.state_dir, d.actions === false ? 'read-only' : 'actions enabled']
      .filter(Boolean).map(String).join(' · ');
  }
  async function round() {
    S.running = true;
    clearTimeout(S.timer);
    S.timer = 0;
    const range = S.range, arr = (v) => (Array.isArray(v) ? v : []);
    const jobs = [
      ['session', !S.session || Date.now() - S.sessionAt > SESSION_MS ? '/api/session' : null, applySession],
      ['keys', '/api/keys', (d) => syncTable($('#keys'), 'data-key', arr(d.keys), KEY_FIELDS, buildKeyRow, fillKey, 'no keys configured')],
      ['providers', '/api/providers', (d) => syncTable($('#providers'), 'data-provider', arr(d.providers), PROV_FIELDS, null, fillProv, 'no providers')],
      ['events', '/api/events?limit=50', (d) => renderEvents(arr(d.events))],
      ['stats', '/api/stats?range=' + encodeURIComponent(range) + '&scope=model', (d) => {
        if (range === S.range) { S.stats = d; renderStats(); }
      }],
    ].filter((j) => j[1]);
    const res = await Promise.allSettled(jobs.map((j) => getJSON(j[1]))), failed = [];
    jobs.forEach((j, i) => {
      try {
        if (res[i].status !== 'fulfilled') throw res[i].reason;
        j[2](res[i].value);
      } catch (e) {
        failed.push(j[0]);
        console.warn('llmgate dashboard:', j[0], String(e));
      }
    });
    const u = $('#updated');
    if (failed.length === jobs.length) {
      u.textContent = 'connection lost';
      u.className = 'pill lost';
      u.title = S.lastOk ? 'last update ' + fClock(S.lastOk) : 'no data received yet';
    } else {
      S.lastOk = Date.now();
      u.textContent = 'updated ' + fClock(S.lastOk) + (failed.length ? ' (partial)' : '');
      u.className = 'pill ' + (failed.length ? 'partial' : 'ok');
      u.title = failed.length ? 'failed: ' + failed.join(', ') : '';
    }
    S.running = false;
    if (S.again) { S.again = false; round(); } else schedule();
  }
  function schedule() {
    clearTimeout(S.timer);
    S.timer = setTimeout(() => {
      S.timer = 0;
      if (document.hidden) S.paused = true; else round();
    }, POLL_MS);
  }
  function kick() { if (S.running) S.again = true; else round(); }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      if (!S.running) { clearTimeout(S.timer); S.timer = 0; S.paused = true; }
    } else if (S.paused || (!S.running && !S.timer)) { S.paused = false; kick(); }
  });

  // == actions
  function ask(dlg, ok, focus) {
    return new Promise((resolve) => {
      let yes = false;
      const onOk = () => { yes = true; dlg.close(); };
      const onKey = (e) => { if (e.key === 'Enter' && e.target.tagName !== 'BUTTON') { e.preventDefault(); onOk(); } };
      ok.addEventListener('click', onOk);
      dlg.addEventListener('keydown', onKey);
      dlg.addEventListener('close', () => {
        ok.removeEventListener('click', onOk);
        dlg.removeEventListener('keydown', onKey);
        resolve(yes);
      }, { once: true });
      dlg.showModal();
      if (focus) focus.focus();
    });
  }
  function result(text, bad) {
    const r = $('#action-result');
    r.textContent = text;
    r.classList.toggle('error', bad);
  }
  async function act(name, action) {
    let q = '', what = action === 'disable' ? 'disabled' : 'enabled';
    if (action === 'cooldown') {
      const sel = $('#cooldown-duration');
      $('#action-key').textContent = name;
      if (!(await ask($('#action-dialog'), $('#action-ok'), sel))) return;
      q = '?duration_ms=' + encodeURIComponent(sel.value);
      what = 'cooling down for ' + fDur(+sel.value).replace(/ 0s$/, '');
    }
    let tok = getTok();
    if (!tok) {
      const inp = $('#token-input');
      inp.value = '';
      const ok = await ask($('#token-dialog'), $('#token-ok'), inp);
      tok = inp.value.trim();
      inp.value = '';
      if (!ok || !tok) return;
      setTok(tok);
    }
    try {
      const r = await fetch('/api/keys/' + encodeURIComponent(name) + '/' + action + q,
        { method: 'POST', cache: 'no-store', headers: { Authorization: 'Bearer ' + tok } });
      const body = await r.json().catch(() => null), m = body && body.error && body.error.message;
      if (r.status === 401) setTok('');
      result(r.ok ? 'ok: ' + name + ' ' + what : m ? String(m) : 'HTTP ' + r.status, !r.ok);
    } catch (e) {
      result('request failed: ' + (e && e.message ? e.message : e), true);
    }
    kick();
  }
  $('#keys').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]'), tr = b && b.closest('tr[data-key]');
    if (!tr || b.disabled || S.busy) return;
    S.busy = true;
    try { await act(tr.getAttribute('data-key'), b.getAttribute('data-action')); } finally { S.busy = false; }
  });
  for (const b of $$('dialog .cancel')) b.addEventListener('click', () => b.closest('dialog').close());

  // == controls
  function seg(id, attr, key, after) {
    const box = $(id), mark = () => { for (const b of $$('button', box)) b.classList.toggle('on', b.getAttribute(attr) === S[key]); };
    box.addEventListener('click', (e) => {
      const b = e.target.closest('button[' + attr + ']');
      if (!b || b.getAttribute(attr) === S[key]) return;
      S[key] = b.getAttribute(attr);
      mark();
      after();
    });
    mark();
  }
  const h = new URLSearchParams(location.hash.slice(1)); // e.g. #range=7d (for links / screenshots)
  if (RANGES.includes(h.get('range'))) S.range = h.get('range');
  S.model = h.get('model') || '';
  seg('#range', 'data-range', 'range', () => { S.stats = null; renderStats(); kick(); });
  seg('#spend-metric', 'data-metric', 'metric', drawCharts);
  seg('#spend-period', 'data-period', 'period', drawCharts);
  $('#model').addEventListener('change', (e) => { S.model = e.target.value; renderStats(); });
  let raf = 0;
  window.addEventListener('resize', () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(drawCharts); });
  renderStats();
  round();
})();
