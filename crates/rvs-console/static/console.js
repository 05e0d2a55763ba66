// rvs console: live updates of the monitoring table over Server-Sent Events.
// Vendored, no dependencies; the page works without it (reload to refresh).
(function () {
  'use strict';
  var table = document.getElementById('live');
  if (!table || !window.EventSource) { return; }
  var status = document.getElementById('live-status');
  var time = document.getElementById('snap-time');
  var failover = document.getElementById('failover');
  function set(tr, field, value) {
    var td = tr.querySelector('[data-f="' + field + '"]');
    if (td && td.textContent !== String(value)) { td.textContent = String(value); }
  }
  function health(h) {
    if (!h) { return '-'; }
    var s = (h.up ? 'up' : 'down') + ' ' + h.successes + '/' + h.failures;
    return h.last_failure ? s + ': ' + h.last_failure : s;
  }
  function reloadSoon() {
    // The set of services or servers changed: render the page again (at most every 10 s).
    var last = Number(sessionStorage.getItem('rvs-reload') || 0);
    if (Date.now() - last > 10000) {
      sessionStorage.setItem('rvs-reload', String(Date.now()));
      location.reload();
    }
  }
  var source = new EventSource('/events');
  source.addEventListener('open', function () { status.textContent = 'live'; });
  source.addEventListener('error', function () { status.textContent = 'live updates interrupted; retrying'; });
  source.addEventListener('snapshot', function (e) {
    var s = JSON.parse(e.data);
    time.textContent = s.time;
    if (s.error) { status.textContent = 'the daemon cannot be read: ' + s.error; return; }
    status.textContent = 'live';
    var rows = {};
    var shown = table.querySelectorAll('tr[data-key]');
    for (var i = 0; i < shown.length; i++) { rows[shown[i].getAttribute('data-key')] = shown[i]; }
    var count = 0, changed = false;
    s.services.forEach(function (svc) {
      var tr = rows['svc|' + svc.id];
      if (!tr) { changed = true; return; }
      count++;
      if (tr.querySelector('[data-f="state"]').textContent !== svc.state) { changed = true; }
      set(tr, 'conns', svc.stats.conns); set(tr, 'cps', svc.rates.cps);
      set(tr, 'inbps', svc.rates.inbps); set(tr, 'outbps', svc.rates.outbps);
      svc.servers.forEach(function (r) {
        var row = rows[svc.id + '|' + r.address];
        if (!row) { changed = true; return; }
        count++;
        row.className = 'real state-' + r.state;
        set(row, 'state', r.state); set(row, 'weight', r.weight);
        set(row, 'configured_weight', r.configured_weight);
        set(row, 'active', r.active); set(row, 'inactive', r.inactive);
        set(row, 'conns', r.stats.conns); set(row, 'cps', r.rates.cps);
        set(row, 'inbps', r.rates.inbps); set(row, 'outbps', r.rates.outbps);
        set(row, 'health', health(r.health));
      });
    });
    if (failover && failover.textContent !== s.failover.text) { failover.textContent = s.failover.text; }
    var announce = document.getElementById('announce');
    var announceDirector = document.getElementById('announce-director');
    if (announce && s.announce) {
      if (announce.textContent !== s.announce.text) { announce.textContent = s.announce.text; }
      if (announceDirector && announceDirector.textContent !== s.announce.director) {
        announceDirector.textContent = s.announce.director;
      }
    }
    var sync = document.getElementById('sync');
    if (sync) {
      (s.sync || []).forEach(function (c) {
        var tr = sync.querySelector('tr[data-sync="' + c.name + '"]');
        var td = tr && tr.querySelector('td');
        if (td && td.textContent !== String(c.value)) { td.textContent = String(c.value); }
      });
    }
    if (changed || count !== shown.length) { reloadSoon(); }
  });
})();
