// Shared by the playground and the docs page: reading the AsyncAPI
// document chanx serves, resolving its `$ref`s, and checking a value
// against a message's JSON Schema (the draft-07 subset schemars writes).
"use strict";

const Chanx = (() => {
  const config = document.documentElement.dataset;

  /** Fetches the app's AsyncAPI document. */
  async function loadDocument() {
    const response = await fetch(config.asyncapi, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      throw new Error(`GET ${config.asyncapi} answered ${response.status}`);
    }
    return response.json();
  }

  /** The value a local `$ref` (`#/a/b`) points at, or undefined. */
  function pointer(doc, ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
    return ref
      .slice(2)
      .split("/")
      .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((value, key) => (value == null ? undefined : value[key]), doc);
  }

  /** `schema` with its own `$ref` followed (not its children's). */
  function deref(doc, schema, depth = 0) {
    if (schema && typeof schema === "object" && typeof schema.$ref === "string" && depth < 32) {
      const target = pointer(doc, schema.$ref);
      if (target === undefined) return schema;
      const { $ref, ...rest } = schema;
      return deref(doc, { ...target, ...rest }, depth + 1);
    }
    return schema;
  }

  /** The last segment of a `$ref`: the name of what it points at. */
  function refName(ref) {
    return typeof ref === "string" ? ref.split("/").pop() : undefined;
  }

  /** Every message of a channel: [{key, message, action}]. */
  function channelMessages(doc, channel) {
    return Object.entries(channel.messages || {}).map(([key, value]) => {
      const message = deref(doc, value);
      const envelope = deref(doc, message.payload) || {};
      const action =
        (envelope.properties && envelope.properties.action && envelope.properties.action.const) ||
        message.name ||
        key;
      return { key, message, action, envelope };
    });
  }

  /** The keys of the messages a channel receives and sends, from its operations. */
  function directions(doc, channelId) {
    const receives = new Set();
    const sends = new Set();
    const prefix = `#/channels/${channelId}/messages/`;
    const keyOf = (ref) => {
      const target = ref && ref.$ref;
      if (typeof target !== "string") return undefined;
      if (target.startsWith(prefix)) return target.slice(prefix.length);
      return refName(target);
    };
    for (const operation of Object.values(doc.operations || {})) {
      if (!operation.channel || operation.channel.$ref !== `#/channels/${channelId}`) continue;
      const into = operation.action === "receive" ? receives : sends;
      for (const message of operation.messages || []) into.add(keyOf(message));
      for (const message of (operation.reply && operation.reply.messages) || []) sends.add(keyOf(message));
    }
    return { receives, sends };
  }

  /** The example frame of a message, or a frame built from its action. */
  function exampleFrame(message, action) {
    const example = message.examples && message.examples[0] && message.examples[0].payload;
    if (example !== undefined) return example;
    return { action, payload: null };
  }

  function typeOf(value) {
    if (value === null) return "null";
    if (Array.isArray(value)) return "array";
    if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
    return typeof value;
  }

  function typeMatches(value, type) {
    const actual = typeOf(value);
    return actual === type || (type === "number" && actual === "integer");
  }

  function path(loc) {
    return loc.length ? loc.map((part) => (typeof part === "number" ? `[${part}]` : `.${part}`)).join("").replace(/^\./, "") : "(the frame)";
  }

  /**
   * Checks `value` against `schema`; returns [{loc, msg}] (empty: valid).
   * Covers what schemars writes: type (and type lists), properties,
   * required, additionalProperties, items, enum, const, $ref, allOf,
   * anyOf, oneOf, minimum/maximum, minLength/maxLength, minItems/maxItems.
   */
  function validate(doc, schema, value, loc = [], depth = 0) {
    const errors = [];
    if (depth > 64 || schema === true || schema === undefined) return errors;
    if (schema === false) return [{ loc, msg: "no value is allowed here" }];
    schema = deref(doc, schema);
    if ("const" in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
      errors.push({ loc, msg: `must be ${JSON.stringify(schema.const)}` });
      return errors;
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((item) => JSON.stringify(item) === JSON.stringify(value))) {
      errors.push({ loc, msg: `must be one of ${schema.enum.map((item) => JSON.stringify(item)).join(", ")}` });
      return errors;
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some((type) => typeMatches(value, type))) {
        errors.push({ loc, msg: `must be ${types.join(" or ")}, not ${typeOf(value)}` });
        return errors;
      }
    }
    for (const part of schema.allOf || []) errors.push(...validate(doc, part, value, loc, depth + 1));
    for (const key of ["anyOf", "oneOf"]) {
      if (!Array.isArray(schema[key])) continue;
      const results = schema[key].map((option) => validate(doc, option, value, loc, depth + 1));
      const passing = results.filter((result) => result.length === 0).length;
      if (passing === 0) {
        // The option closest to the value explains best.
        const best = results.reduce((a, b) => (b.length < a.length ? b : a));
        errors.push(...best);
      } else if (key === "oneOf" && passing > 1 && !schema.discriminator) {
        errors.push({ loc, msg: "matches more than one of the allowed shapes" });
      }
    }
    const actual = typeOf(value);
    if (actual === "object") {
      const properties = schema.properties || {};
      for (const name of schema.required || []) {
        if (!(name in value)) errors.push({ loc: [...loc, name], msg: "is required" });
      }
      for (const [name, item] of Object.entries(value)) {
        if (name in properties) {
          errors.push(...validate(doc, properties[name], item, [...loc, name], depth + 1));
        } else if (schema.additionalProperties === false) {
          errors.push({ loc: [...loc, name], msg: "is not allowed here" });
        } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
          errors.push(...validate(doc, schema.additionalProperties, item, [...loc, name], depth + 1));
        }
      }
    } else if (actual === "array") {
      if (typeof schema.minItems === "number" && value.length < schema.minItems) errors.push({ loc, msg: `needs at least ${schema.minItems} items` });
      if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errors.push({ loc, msg: `takes at most ${schema.maxItems} items` });
      if (Array.isArray(schema.items)) {
        schema.items.forEach((item, index) => {
          if (index < value.length) errors.push(...validate(doc, item, value[index], [...loc, index], depth + 1));
        });
      } else if (schema.items !== undefined) {
        value.forEach((item, index) => errors.push(...validate(doc, schema.items, item, [...loc, index], depth + 1)));
      }
    } else if (actual === "string") {
      if (typeof schema.minLength === "number" && [...value].length < schema.minLength) errors.push({ loc, msg: `needs at least ${schema.minLength} characters` });
      if (typeof schema.maxLength === "number" && [...value].length > schema.maxLength) errors.push({ loc, msg: `takes at most ${schema.maxLength} characters` });
    } else if (actual === "integer" || actual === "number") {
      if (typeof schema.minimum === "number" && value < schema.minimum) errors.push({ loc, msg: `must be at least ${schema.minimum}` });
      if (typeof schema.maximum === "number" && value > schema.maximum) errors.push({ loc, msg: `must be at most ${schema.maximum}` });
    }
    return errors;
  }

  /** A short, readable type for a schema: `string`, `array of Point`, `Point`, `"a" | "b"`. */
  function describeType(doc, schema, depth = 0) {
    if (schema === true || schema === undefined) return "any";
    if (depth > 8) return "…";
    if (schema.$ref) return refName(schema.$ref);
    if ("const" in schema) return JSON.stringify(schema.const);
    if (Array.isArray(schema.enum)) return schema.enum.map((item) => JSON.stringify(item)).join(" | ");
    for (const key of ["anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) return schema[key].map((option) => describeType(doc, option, depth + 1)).join(" | ");
    }
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return describeType(doc, schema.allOf[0], depth + 1);
    const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    return (
      types
        .map((type) => {
          if (type === "array") return `array of ${describeType(doc, schema.items, depth + 1)}`;
          if (type === "object" && schema.title) return schema.title;
          return type;
        })
        .join(" | ") || (schema.properties ? "object" : "any")
    );
  }

  /** Creates an element: el("p", {class: "x"}, "text", child…). */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  return { config, loadDocument, pointer, deref, refName, channelMessages, directions, exampleFrame, validate, path, describeType, el };
})();
