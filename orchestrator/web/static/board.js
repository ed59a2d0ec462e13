// The live delivery board: poll the release's board.json every second and redraw the
// rows (textContent only). Stops polling once the release has settled.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) return;
  var url = table.dataset.boardUrl;
  var body = table.tBodies[0];
  var status = document.getElementById("board-status");
  var badge = document.getElementById("release-state");
  var SETTLED = ["published", "partially_published", "failed", "withdrawn", "rejected"];
  var TERMINAL = ["published", "failed", "cancelled", "withdrawn"];

  var labels = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) {
    return th.textContent;
  });
  var hideWhenLive = document.querySelectorAll("[data-until-live]");
  var NOT_YET_LIVE = ["draft", "in_review", "rejected", "approved", "scheduled"];

  function cell(row, text) {
    var td = document.createElement("td");
    td.dataset.label = labels[row.cells.length] || "";
    if (text !== undefined && text !== null) td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function local(iso) {
    if (!iso) return "";
    var d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
    return d.toISOString().slice(0, 19).replace("T", " ");
  }

  function draw(data) {
    if (badge) {
      badge.textContent = data.release.state_label;
      badge.className = "badge s-" + data.release.state;
      badge.dataset.state = data.release.state;
    }
    if (NOT_YET_LIVE.indexOf(data.release.state) < 0) {
      Array.prototype.forEach.call(hideWhenLive, function (node) { node.hidden = true; });
    }
    if (!data.deliveries.length) return;
    body.textContent = "";
    data.deliveries.forEach(function (d) {
      var tr = document.createElement("tr");
      tr.dataset.channel = d.channel;
      tr.dataset.state = d.state;
      cell(tr, d.channel);
      var span = document.createElement("span");
      span.className = "badge s-" + d.state;
      span.textContent = d.state_label;
      cell(tr).appendChild(span);
      var link = cell(tr);
      if (d.url && /^https?:\/\//.test(d.url)) {
        var a = document.createElement("a");
        a.href = d.url; a.textContent = d.url; a.rel = "noopener"; a.target = "_blank";
        link.appendChild(a);
      } else if (d.url) {
        link.textContent = d.url;
      }
      cell(tr, String(d.attempts));
      cell(tr, local(d.next_attempt_at));
      cell(tr, [d.last_error_code, d.last_error].filter(Boolean).join(" "));
      body.appendChild(tr);
    });
  }

  function settled(data) {
    return SETTLED.indexOf(data.release.state) >= 0 && data.deliveries.every(function (d) {
      return TERMINAL.indexOf(d.state) >= 0;
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        draw(data);
        if (settled(data)) { status.textContent = "（已完成）"; return; }
        status.textContent = "（实时，最后更新 " + local(data.at).slice(11) + "）";
        setTimeout(poll, 1000);
      })
      .catch(function (err) {
        status.textContent = "（刷新失败：" + err.message + "，稍后重试）";
        setTimeout(poll, 3000);
      });
  }

  poll();
})();
