// The docs page: the app's AsyncAPI document rendered for people —
// servers, channels, operations with their replies, and every message with
// its schema as a table and its example, each linked to the playground.
"use strict";

(() => {
  const { el } = Chanx;
  let doc;

  function tryLink(channelId, messageKey) {
    return `${Chanx.config.playground}#channel=${encodeURIComponent(channelId)}&message=${encodeURIComponent(messageKey)}`;
  }

  function messageKeyOf(ref) {
    const target = ref && ref.$ref;
    return typeof target === "string" ? target.split("/").pop() : undefined;
  }

  /** Rows of a schema's properties, nested objects indented below their field. */
  function propertyRows(schema, prefix, depth, seen) {
    const rows = [];
    const resolved = Chanx.deref(doc, schema);
    if (!resolved || typeof resolved !== "object" || depth > 6) return rows;
    const required = new Set(resolved.required || []);
    for (const [name, property] of Object.entries(resolved.properties || {})) {
      const field = prefix ? `${prefix}.${name}` : name;
      const target = Chanx.deref(doc, property);
      const itemTarget = target && target.type === "array" ? Chanx.deref(doc, target.items) : undefined;
      rows.push(
        el("tr", null,
          el("td", null, el("code", null, field)),
          el("td", null, Chanx.describeType(doc, property)),
          el("td", null, required.has(name) ? "yes" : "no"),
          el("td", null, (property && property.description) || (target && target.description) || "")),
      );
      const nested = itemTarget && itemTarget.properties ? itemTarget : target && target.properties ? target : undefined;
      const name2 = property && (property.$ref || (property.items && property.items.$ref));
      if (nested && !(name2 && seen.has(name2))) {
        const next = new Set(seen);
        if (name2) next.add(name2);
        rows.push(...propertyRows(nested, itemTarget ? `${field}[]` : field, depth + 1, next));
      }
    }
    return rows;
  }

  function schemaTable(payload) {
    const resolved = Chanx.deref(doc, payload);
    if (!resolved || resolved.type === "null") {
      return el("p", { class: "muted" }, "The payload is null (it may be left out).");
    }
    if (!resolved.properties) {
      return el("p", null, "Payload: ", el("code", null, Chanx.describeType(doc, payload)), resolved.description ? ` — ${resolved.description}` : "");
    }
    return el("table", { class: "schema" },
      el("caption", { class: "visually-hidden" }, "Payload fields"),
      el("thead", null, el("tr", null, el("th", { scope: "col" }, "Field"), el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "Required"), el("th", { scope: "col" }, "Description"))),
      el("tbody", null, ...propertyRows(resolved, "", 0, new Set([payload.$ref]))));
  }

  function renderMessage(channelId, entry, receives) {
    const { key, message, action, envelope } = entry;
    const payload = envelope.properties && envelope.properties.payload;
    const example = Chanx.exampleFrame(message, action);
    const id = `message-${channelId}-${key}`;
    return el("article", { class: "message", id, "data-message": key, "aria-labelledby": `${id}-title` },
      el("h4", { id: `${id}-title` }, el("code", null, action), " ", el("span", { class: "muted" }, message.title || key),
        receives ? el("span", { class: "tag" }, "client → server") : el("span", { class: "tag" }, "server → client")),
      message.summary ? el("p", null, message.summary) : null,
      message.description && message.description !== message.summary ? el("details", null, el("summary", null, "More"), el("pre", { class: "prose" }, message.description)) : null,
      payload ? schemaTable(payload) : null,
      el("p", { class: "example-label" }, "Example"),
      el("pre", { class: "json" }, JSON.stringify(example, null, 2)),
      receives ? el("p", null, el("a", { class: "try", href: tryLink(channelId, key) }, `Try ${action} in the playground`)) : null);
  }

  function renderOperation(channelId, operationId, operation) {
    const names = (refs) => (refs || []).map((ref) => el("code", null, messageKeyOf(ref))).flatMap((node, index) => (index ? [", ", node] : [node]));
    return el("li", { class: "operation", id: `operation-${operationId}` },
      el("strong", null, operation.action === "receive" ? "Client sends " : "Server sends "),
      ...names(operation.messages),
      operation.reply ? [" → replies ", ...names(operation.reply.messages)] : [],
      operation.summary ? el("span", { class: "muted" }, ` — ${operation.summary}`) : null);
  }

  function render() {
    const info = doc.info || {};
    document.title = `${info.title || "API"} · documentation`;
    document.getElementById("title").textContent = info.title || "API documentation";
    document.getElementById("subtitle").textContent = [info.version && `version ${info.version}`, info.description].filter(Boolean).join(" · ");
    const content = document.getElementById("content");
    const toc = document.getElementById("toc");
    const tocList = el("ul");
    toc.replaceChildren(el("h2", null, "Channels"), tocList);

    const servers = Object.entries(doc.servers || {});
    if (servers.length) {
      content.append(el("section", { class: "servers", "aria-labelledby": "servers-title" },
        el("h2", { id: "servers-title" }, "Servers"),
        el("ul", null, ...servers.map(([name, server]) => el("li", null, el("strong", null, name), " ", el("code", null, `${server.protocol}://${server.host}`), server.description ? ` — ${server.description}` : "")))));
    }
    for (const [channelId, channel] of Object.entries(doc.channels || {})) {
      const { receives } = Chanx.directions(doc, channelId);
      const messages = Chanx.channelMessages(doc, channel);
      const sectionId = `channel-${channelId}`;
      tocList.append(el("li", null, el("a", { href: `#${sectionId}` }, channel.title || channelId),
        el("ul", null, ...messages.map((entry) => el("li", null, el("a", { href: `#message-${channelId}-${entry.key}` }, entry.action))))));
      const parameters = Object.entries(channel.parameters || {});
      const query = channel.bindings && channel.bindings.ws && channel.bindings.ws.query && channel.bindings.ws.query.properties;
      const headers = channel.bindings && channel.bindings.ws && channel.bindings.ws.headers && channel.bindings.ws.headers.properties;
      const operations = Object.entries(doc.operations || {}).filter(([, operation]) => operation.channel && operation.channel.$ref === `#/channels/${channelId}`);
      const security = new Set();
      for (const [, operation] of operations) for (const scheme of operation.security || []) security.add(Chanx.deref(doc, scheme).description || Chanx.refName(scheme.$ref));
      content.append(
        el("section", { class: "channel-doc", id: sectionId, "data-channel": channelId, "aria-labelledby": `${sectionId}-title` },
          el("h2", { id: `${sectionId}-title` }, channel.title || channelId, " ", el("code", null, channel.address)),
          channel.description ? el("p", null, channel.description) : null,
          channel["x-topic"] ? el("p", { class: "topic" }, "Topic ", el("code", null, channel["x-topic"].pattern), ": frames carry ", el("code", null, "\"version\":1,\"topic\":…"), "; subscribe first.") : null,
          (channel.tags || []).length ? el("p", { class: "tags" }, ...channel.tags.map((tag) => el("span", { class: "tag" }, tag.name))) : null,
          parameters.length ? el("p", null, "Path parameters: ", ...parameters.map(([name, parameter], index) => [index ? ", " : "", el("code", null, `{${name}}`), parameter.description ? ` (${parameter.description})` : ""])) : null,
          query ? el("p", null, "Query: ", ...Object.entries(query).map(([name, schema], index) => [index ? ", " : "", el("code", null, `?${name}`), schema.description ? ` (${schema.description})` : ""])) : null,
          headers ? el("p", null, "Headers: ", ...Object.entries(headers).map(([name, schema], index) => [index ? ", " : "", el("code", null, name), schema.description ? ` (${schema.description})` : ""])) : null,
          el("p", null, el("strong", null, "Authentication: "), security.size ? [...security].join("; ") : "none"),
          el("h3", null, "Operations"),
          el("ul", { class: "operations" }, ...operations.map(([id, operation]) => renderOperation(channelId, id, operation))),
          el("h3", null, "Messages"),
          ...messages.map((entry) => renderMessage(channelId, entry, receives.has(entry.key)))),
      );
    }
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  Chanx.loadDocument().then(
    (loaded) => {
      doc = loaded;
      render();
    },
    (error) => {
      document.getElementById("subtitle").textContent = `Cannot load the AsyncAPI document: ${error.message}`;
    },
  );
})();
