// The WebSocket playground: every channel of the app's AsyncAPI document,
// connections side by side, messages checked against their schema before
// they are sent, and a live log of frames with replies linked to requests.
"use strict";

(() => {
  const { el } = Chanx;
  let doc;
  let paneCount = 0;
  const requested = new URLSearchParams(location.hash.slice(1));

  function announce(text) {
    document.getElementById("status").textContent = text;
  }

  function wsBase() {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
  }

  function securityOf(channelId) {
    const names = new Set();
    for (const operation of Object.values(doc.operations || {})) {
      if (!operation.channel || operation.channel.$ref !== `#/channels/${channelId}`) continue;
      for (const scheme of operation.security || []) {
        const resolved = Chanx.deref(doc, scheme);
        names.add(resolved.description || Chanx.refName(scheme.$ref));
      }
    }
    return [...names];
  }

  function parameterNames(channel) {
    const fromAddress = [...(channel.address || "").matchAll(/\{\*?([^}]+)\}/g)].map((match) => match[1]);
    return [...new Set([...fromAddress, ...Object.keys(channel.parameters || {})])];
  }

  // A Chanx topic (`x-topic`): its frames carry `"version":1,"topic":…`.
  function topicOf(channel) {
    const topic = channel["x-topic"];
    return topic && typeof topic.pattern === "string" ? topic : null;
  }

  function queryFields(channel) {
    const query = channel.bindings && channel.bindings.ws && channel.bindings.ws.query;
    return Object.entries((query && query.properties) || {});
  }

  function renderChannels() {
    const list = document.getElementById("channels");
    list.replaceChildren();
    for (const [id, channel] of Object.entries(doc.channels || {})) {
      const formId = `connect-${id}`;
      const fields = [];
      for (const name of parameterNames(channel)) {
        const description = channel.parameters && channel.parameters[name] && channel.parameters[name].description;
        const inputId = `${formId}-param-${name}`;
        fields.push(
          el("div", { class: "field" },
            el("label", { for: inputId }, `{${name}}`, description ? el("span", { class: "hint" }, ` ${description}`) : null),
            el("input", { id: inputId, name: `param:${name}`, required: true, autocomplete: "off", value: requested.get(name) || "" })),
        );
      }
      const topic = topicOf(channel);
      const routeParams = parameterNames(channel);
      for (const name of topic ? topic.parameters || [] : []) {
        if (routeParams.includes(name)) continue; // the route's value fills it
        const inputId = `${formId}-topic-${name}`;
        fields.push(
          el("div", { class: "field" },
            el("label", { for: inputId }, `topic {${name}}`, el("span", { class: "hint" }, ` in ${topic.pattern}`)),
            el("input", { id: inputId, name: `topic:${name}`, required: true, autocomplete: "off", value: requested.get(name) || "" })),
        );
      }
      for (const [name, schema] of queryFields(channel)) {
        const inputId = `${formId}-query-${name}`;
        fields.push(
          el("div", { class: "field" },
            el("label", { for: inputId }, `?${name}`, schema.description ? el("span", { class: "hint" }, ` ${schema.description}`) : null),
            el("input", { id: inputId, name: `query:${name}`, autocomplete: "off", value: requested.get(name) || "" })),
        );
      }
      const extraId = `${formId}-extra`;
      fields.push(
        el("div", { class: "field" },
          el("label", { for: extraId }, "Other query ", el("span", { class: "hint" }, "(a=1&b=2)")),
          el("input", { id: extraId, name: "extra", autocomplete: "off" })),
      );
      const security = securityOf(id);
      const tags = (channel.tags || []).map((tag) => el("span", { class: "tag" }, tag.name));
      const form = el("form", { id: formId, class: "connect", "data-channel": id, "aria-label": `Connect to ${channel.title || id}` },
        ...fields,
        el("button", { type: "submit" }, "Connect"));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const data = new FormData(form);
        let address = channel.address || "/";
        const query = new URLSearchParams();
        for (const [key, value] of data.entries()) {
          if (key.startsWith("param:")) address = address.replace(new RegExp(`\\{\\*?${key.slice(6)}\\}`), encodeURIComponent(value));
          else if (key.startsWith("query:") && value) query.set(key.slice(6), value);
          else if (key === "extra" && value) new URLSearchParams(value).forEach((v, k) => query.append(k, v));
        }
        const url = `${wsBase()}${address}${query.toString() ? `?${query}` : ""}`;
        const topicName = topic
          ? topic.pattern.replace(/\{([^}]+)\}/g, (_, name) => String(data.get(`topic:${name}`) ?? data.get(`param:${name}`) ?? ""))
          : null;
        openPane(id, channel, url, topicName);
      });
      list.append(
        el("article", { class: "channel", role: "listitem", "data-channel": id, "aria-labelledby": `${formId}-title` },
          el("h3", { id: `${formId}-title` }, channel.title || id),
          el("p", null, el("code", null, channel.address)),
          topic ? el("p", { class: "topic" }, "Topic ", el("code", null, topic.pattern)) : null,
          channel.description ? el("p", { class: "description" }, channel.description) : null,
          tags.length ? el("p", { class: "tags" }, ...tags) : null,
          security.length ? el("p", { class: "security" }, el("strong", null, "Authentication: "), security.join("; ")) : el("p", { class: "security muted" }, "No authentication"),
          form,
          el("p", null, el("a", { href: `${Chanx.config.docs}#channel-${id}` }, `Documentation of ${channel.title || id}`))),
      );
    }
    const wanted = requested.get("channel");
    if (wanted) {
      const form = document.getElementById(`connect-${wanted}`);
      if (form) form.querySelector("input, button").focus();
    }
  }

  function time() {
    const now = new Date();
    return now.toTimeString().slice(0, 8) + "." + String(now.getMilliseconds()).padStart(3, "0");
  }

  function openPane(channelId, channel, url, topic) {
    paneCount += 1;
    const paneId = `pane-${paneCount}`;
    const messages = Chanx.channelMessages(doc, channel);
    const { receives } = Chanx.directions(doc, channelId);
    const sendable = messages.filter((entry) => receives.has(entry.key));
    let socket = null;
    let sent = 0;
    const requests = new Map();

    const status = el("span", { class: "state", "data-state": "connecting" }, "connecting");
    const log = el("ol", { class: "log", "aria-label": `Frames of connection ${paneCount}`, "aria-live": "polite", "aria-relevant": "additions" });
    const errors = el("ul", { class: "errors", "aria-live": "assertive" });
    const frameId = `${paneId}-frame`;
    const selectId = `${paneId}-message`;
    const refId = `${paneId}-ref`;
    const commandId = `${paneId}-command`;
    const textarea = el("textarea", { id: frameId, name: "frame", rows: 8, spellcheck: "false", "aria-describedby": `${paneId}-errors` });
    errors.id = `${paneId}-errors`;
    const select = el("select", { id: selectId, name: "message" },
      ...sendable.map((entry) => el("option", { value: entry.key }, entry.action)));
    const addRef = el("input", { type: "checkbox", id: refId, name: "ref", checked: true });
    const command = el("textarea", { id: commandId, class: "command", rows: 2, readonly: true, hidden: true });

    function fill() {
      const entry = sendable.find((candidate) => candidate.key === select.value);
      textarea.value = entry ? JSON.stringify(Chanx.exampleFrame(entry.message, entry.action), null, 2) : "";
      errors.replaceChildren();
    }
    select.addEventListener("change", fill);

    function entry(direction, text, extra = {}) {
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = undefined;
      }
      const action = frame && typeof frame === "object" && !Array.isArray(frame) ? frame.action : undefined;
      const ref = frame && frame.ref !== undefined && frame.ref !== null ? String(frame.ref) : undefined;
      const id = `${paneId}-${direction}-${log.children.length + 1}`;
      const item = el("li", { id, class: `frame ${direction}`, "data-direction": direction, "data-action": action || "" },
        el("span", { class: "time" }, time()),
        el("span", { class: "arrow", "aria-label": direction === "out" ? "sent" : "received" }, direction === "out" ? "→" : "←"),
        el("strong", { class: "action" }, action || "(not JSON)"),
        ref !== undefined ? el("span", { class: "ref" }, `ref ${ref}`) : null,
        frame && typeof frame.topic === "string" ? el("span", { class: "ref", "data-topic": frame.topic }, `topic ${frame.topic}`) : null,
        frame && Number.isInteger(frame.seq) ? el("span", { class: "ref" }, `seq ${frame.seq}`) : null);
      if (action === "authentication" && frame.payload) {
        const code = frame.payload.status_code ?? frame.payload.statusCode;
        const text2 = frame.payload.status_text ?? frame.payload.statusText;
        item.classList.add("auth", code === 200 ? "ok" : "refused");
        item.append(el("span", { class: "badge" }, `${code} ${text2 || ""}`.trim()));
      }
      if (action === "error") item.classList.add("error");
      if (direction === "out" && ref !== undefined) requests.set(ref, id);
      if (direction === "in" && ref !== undefined && requests.has(ref)) {
        const requestId = requests.get(ref);
        item.append(el("a", { class: "reply-link", href: `#${requestId}` }, "reply to request"));
        const request = document.getElementById(requestId);
        if (request && !request.querySelector(".reply-link")) {
          request.append(el("a", { class: "reply-link", href: `#${id}` }, "see reply"));
        }
      }
      const body = el("pre", { class: "json" }, frame !== undefined ? JSON.stringify(frame, null, 2) : text);
      item.append(el("details", { open: extra.open !== false }, el("summary", null, `${text.length} bytes`), body));
      log.append(item);
      log.scrollTop = log.scrollHeight;
      return item;
    }

    function note(text, kind) {
      log.append(el("li", { class: `note ${kind || ""}`, "data-direction": "note" }, el("span", { class: "time" }, time()), " ", text));
    }

    function setState(state, label) {
      status.dataset.state = state;
      status.textContent = label || state;
      pane.dataset.state = state;
    }

    function connect() {
      setState("connecting");
      note(`connecting to ${url}`);
      socket = new WebSocket(url);
      socket.addEventListener("open", () => {
        setState("open");
        note("open");
        announce(`Connection ${paneCount} to ${channel.title || channelId} is open`);
      });
      socket.addEventListener("message", (event) => {
        if (typeof event.data === "string") entry("in", event.data);
        else note("a binary frame (not part of the protocol)", "error");
      });
      socket.addEventListener("close", (event) => {
        const reason = event.reason ? ` ${event.reason}` : "";
        setState("closed", `closed ${event.code}${reason}`);
        note(`closed with ${event.code}${reason}${event.wasClean ? "" : " (not cleanly)"}`, event.code === 1000 || event.code === 1001 ? "" : "error");
        announce(`Connection ${paneCount} closed with ${event.code}${reason}`);
      });
    }

    function send() {
      errors.replaceChildren();
      let frame;
      try {
        frame = JSON.parse(textarea.value);
      } catch (error) {
        errors.append(el("li", null, `Invalid JSON: ${error.message}`));
        textarea.setAttribute("aria-invalid", "true");
        return;
      }
      const problems = [];
      if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
        problems.push({ loc: [], msg: "must be an object {\"action\": …, \"payload\": …}" });
      } else {
        const target = messages.find((candidate) => receives.has(candidate.key) && candidate.action === frame.action);
        if (!target) {
          problems.push({ loc: ["action"], msg: `must be one of ${sendable.map((candidate) => JSON.stringify(candidate.action)).join(", ")}` });
        } else {
          problems.push(...Chanx.validate(doc, target.message.payload, frame));
        }
      }
      if (problems.length) {
        for (const problem of problems) errors.append(el("li", null, `${Chanx.path(problem.loc)} ${problem.msg}`));
        textarea.setAttribute("aria-invalid", "true");
        return;
      }
      textarea.removeAttribute("aria-invalid");
      if (!socket || socket.readyState !== WebSocket.OPEN) {
        errors.append(el("li", null, "Not connected: reconnect first."));
        return;
      }
      if (topic && frame.topic === undefined) {
        frame.version = 1;
        frame.topic = topic;
      }
      if (addRef.checked && frame.ref === undefined) {
        sent += 1;
        frame.ref = `${paneCount}.${sent}`;
      }
      const text = JSON.stringify(frame);
      socket.send(text);
      entry("out", text);
    }

    function commandLine() {
      const quoted = `'${url.replace(/'/g, "'\\''")}'`;
      command.value = `websocat ${quoted}\npython -m websockets ${quoted}`;
      command.hidden = false;
      command.focus();
      command.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(command.value).then(
          () => announce("Command line copied"),
          () => announce("Command line selected: copy it with Ctrl+C"),
        );
      } else {
        announce("Command line selected: copy it with Ctrl+C");
      }
    }

    const pane = el("section", { id: paneId, class: "pane", "data-channel": channelId, "data-state": "connecting", "aria-labelledby": `${paneId}-title` },
      el("header", null,
        el("h3", { id: `${paneId}-title` }, `#${paneCount} ${channel.title || channelId}`),
        status),
      el("p", { class: "url" }, el("code", null, url)),
      topic ? el("p", { class: "url" }, "Frames are sent to topic ", el("code", { "data-topic": topic }, topic)) : null,
      el("div", { class: "actions" },
        el("button", { type: "button", "data-act": "reconnect", onclick: () => { if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, "reconnect"); connect(); } }, "Reconnect"),
        el("button", { type: "button", "data-act": "disconnect", onclick: () => { if (socket) socket.close(1000); } }, "Disconnect"),
        el("button", { type: "button", "data-act": "clear", onclick: () => { log.replaceChildren(); requests.clear(); } }, "Clear log"),
        el("button", { type: "button", "data-act": "copy", onclick: commandLine }, "Copy as command"),
        el("button", { type: "button", "data-act": "close-pane", "aria-label": `Close connection ${paneCount}`, onclick: () => { if (socket) socket.close(1000); pane.remove(); } }, "✕")),
      el("label", { for: commandId, class: "visually-hidden" }, "Command line"),
      command,
      el("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); send(); } },
        el("div", { class: "field" }, el("label", { for: selectId }, "Message"), select),
        el("div", { class: "field" }, el("label", { for: frameId }, "Frame (JSON)"), textarea),
        errors,
        el("div", { class: "row" },
          el("label", { for: refId, class: "inline" }, addRef, " add a ref to link the reply"),
          el("button", { type: "submit", "data-act": "send" }, "Send"))),
      el("h4", null, "Frames"),
      log);

    document.getElementById("empty").hidden = true;
    document.getElementById("connections").append(pane);
    const wantedMessage = requested.get("message");
    if (wantedMessage && sendable.some((candidate) => candidate.key === wantedMessage)) select.value = wantedMessage;
    fill();
    connect();
    textarea.focus();
  }

  async function start() {
    try {
      doc = await Chanx.loadDocument();
    } catch (error) {
      document.getElementById("subtitle").textContent = `Cannot load the AsyncAPI document: ${error.message}`;
      return;
    }
    const info = doc.info || {};
    document.title = `${info.title || "API"} · WebSocket playground`;
    document.getElementById("title").textContent = `${info.title || "API"} playground`;
    document.getElementById("subtitle").textContent = [info.version && `version ${info.version}`, info.description].filter(Boolean).join(" · ");
    renderChannels();
  }

  start();
})();
