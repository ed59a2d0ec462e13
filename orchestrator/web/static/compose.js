// Live per-channel preview of the unsaved compose form: POST the form, draw one panel
// per channel. Text from the server is only ever set as textContent or srcdoc.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  if (!form) return;
  var panels = document.getElementById("preview-panels");
  var problems = document.getElementById("preview-problems");
  var status = document.getElementById("preview-status");
  var timer = null, seq = 0;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw(result) {
    problems.textContent = "";
    (result.problems || []).forEach(function (p) {
      problems.appendChild(el("li", "", p.field + "：" + p.message));
    });
    panels.textContent = "";
    (result.channels || []).forEach(function (c) {
      var panel = el("article", "panel");
      panel.setAttribute("aria-label", c.name + " 预览");
      panel.dataset.channel = c.name;
      var title = el("h3", "", c.name + " ");
      title.appendChild(el("small", "", c.kind));
      panel.appendChild(title);
      if (c.count) {
        panel.appendChild(el("p", "count" + (c.problems.length ? " over" : ""), "字数：" + c.count));
      }
      if (c.problems.length) {
        var list = el("ul", "problems");
        c.problems.forEach(function (p) { list.appendChild(el("li", "", p)); });
        panel.appendChild(list);
      }
      if (c.html) {
        var frame = el("iframe", "page");
        frame.setAttribute("sandbox", "");
        frame.title = c.name + " 页面预览";
        frame.srcdoc = c.document;
        panel.appendChild(frame);
      } else {
        panel.appendChild(el("pre", "doc", c.document));
      }
      panels.appendChild(panel);
    });
    status.textContent = result.ok ? "（可以提交）" : "（有需要修改的地方）";
  }

  function refresh() {
    var mine = ++seq;
    var data = new FormData(form);
    status.textContent = "（更新中…）";
    fetch(form.dataset.previewUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": data.get("csrf") || "", "Accept": "application/json" }
    }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (result) {
      if (mine === seq) draw(result);
    }).catch(function (err) {
      if (mine === seq) status.textContent = "（预览失败：" + err.message + "）";
    });
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  }

  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  refresh();
})();
