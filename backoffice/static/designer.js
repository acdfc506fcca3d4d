// The process designer: bpmn-js Modeler (npm) with the engine's side panel. The page gives the
// model and the translated labels as JSON blocks (CSP: no inline script); drafts are saved to
// the server, which validates them and answers with the problems found.
//
// Every edit goes through bpmn-js commands (modeling.updateProperties / updateModdleProperties),
// so Ctrl+Z undoes it; an edit made of several commands runs as one (see batch()).
(function () {
  "use strict";
  var root = document.getElementById("designer");
  var container = document.getElementById("canvas");
  if (!root || !container) { return; }
  var data = JSON.parse(document.getElementById("designer-data").textContent);
  var L = JSON.parse(document.getElementById("designer-labels").textContent);
  var panel = document.getElementById("panel");
  var statusLine = document.getElementById("designer-status");
  var problemList = document.getElementById("problems");
  var problemCount = document.getElementById("problem-count");
  var changeList = document.getElementById("changes");
  var changeSection = document.getElementById("changes-section");
  var csrf = root.dataset.csrf;

  var TASK_KINDS = ["bpmn:Task", "bpmn:UserTask", "bpmn:ServiceTask", "bpmn:ScriptTask", "bpmn:ManualTask",
                    "bpmn:SendTask", "bpmn:ReceiveTask", "bpmn:BusinessRuleTask"];
  var NEEDS_AMOUNT = { working_days: true, working_hours: true, calendar_days: true };
  var IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
  var NEW_FORM = "\u0000new";

  var modeler, modeling, moddle, bpmnFactory, bpmnReplace, registry, selection, canvas, overlays, commandStack;
  var editing = 0; // > 0 while the panel runs commands: no redraw of the panel under the user's cursor
  var dirty = false;
  var schemaText = {}; // form key → schema text that is not valid JSON yet
  var saves = 0;
  var markedProblems = [];
  var markedChanges = [];

  function fmt(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : all;
    });
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) { return; }
      if (key === "text") { node.textContent = value; } else if (key === "dataset") {
        Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
      } else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), value); } else if (key === "value") {
        node.value = value;
      } else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function setStatus(text, kind) {
    statusLine.textContent = text || "";
    statusLine.className = "designer-status" + (kind ? " " + kind : "");
  }

  function markDirty() {
    dirty = true;
    root.dataset.dirty = "true";
    setStatus(L.unsaved, "muted");
  }

  function is(bo, type) { return !!bo && typeof bo.$instanceOf === "function" && bo.$instanceOf(type); }

  // --- moddle helpers: extension elements -------------------------------------------------

  // Several commands as one undo step: a command whose pre-execution runs them.
  function BatchHandler() {}
  BatchHandler.prototype.preExecute = function (context) { context.run(); };
  BatchHandler.prototype.execute = function () { return []; };
  BatchHandler.prototype.revert = function () { return []; };

  function batch(run) {
    editing += 1;
    try { commandStack.execute("motcua.batch", { run: run }); } finally { editing -= 1; }
  }

  function extension(bo, type) {
    var ext = bo.extensionElements;
    return ext && (ext.values || []).filter(function (v) { return is(v, type); })[0];
  }

  function ensureExtensionElements(element) {
    var bo = element.businessObject;
    if (!bo.extensionElements) {
      var ext = bpmnFactory.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo;
      modeling.updateProperties(element, { extensionElements: ext });
    }
    return bo.extensionElements;
  }

  function addExtension(element, child) {
    var ext = ensureExtensionElements(element);
    child.$parent = ext;
    modeling.updateModdleProperties(element, ext, { values: (ext.values || []).concat([child]) });
  }

  function removeExtension(element, child) {
    var ext = element.businessObject.extensionElements;
    var rest = (ext.values || []).filter(function (v) { return v !== child; });
    if (rest.length) {
      modeling.updateModdleProperties(element, ext, { values: rest });
    } else {
      modeling.updateProperties(element, { extensionElements: undefined });
    }
  }

  function getProperty(bo, name) {
    var props = extension(bo, "spiffworkflow:Properties");
    var found = props && (props.properties || []).filter(function (p) { return p.name === name; })[0];
    return found ? (found.value || "") : "";
  }

  // spiffworkflow:property name=…: set to value, or removed when value is empty.
  function setProperty(element, name, value) {
    var bo = element.businessObject;
    batch(function () {
      var props = extension(bo, "spiffworkflow:Properties");
      if (!props) {
        if (!value) { return; }
        props = moddle.create("spiffworkflow:Properties", { properties: [] });
        addExtension(element, props);
      }
      var list = props.properties || [];
      var found = list.filter(function (p) { return p.name === name; })[0];
      if (!value) {
        if (!found) { return; }
        var rest = list.filter(function (p) { return p !== found; });
        if (rest.length) {
          modeling.updateModdleProperties(element, props, { properties: rest });
        } else {
          removeExtension(element, props);
        }
      } else if (found) {
        modeling.updateModdleProperties(element, found, { value: value });
      } else {
        var property = moddle.create("spiffworkflow:Property", { name: name, value: value });
        property.$parent = props;
        modeling.updateModdleProperties(element, props, { properties: list.concat([property]) });
      }
    });
  }

  function operatorOf(bo) {
    var operator = extension(bo, "spiffworkflow:ServiceTaskOperator");
    if (!operator) { return { id: "", resultVariable: "", parameters: {} }; }
    var params = {};
    ((operator.parameters && operator.parameters.parameters) || []).forEach(function (p) { params[p.id] = p.value || ""; });
    return { id: operator.id || "", resultVariable: operator.resultVariable || "", parameters: params };
  }

  // The service task's spiffworkflow:serviceTaskOperator, rebuilt from the panel's values.
  function setOperator(element, spec) {
    var bo = element.businessObject;
    batch(function () {
      var old = extension(bo, "spiffworkflow:ServiceTaskOperator");
      if (old) { removeExtension(element, old); }
      if (!spec.id) { return; }
      var operator = moddle.create("spiffworkflow:ServiceTaskOperator", { id: spec.id });
      if (spec.resultVariable) { operator.resultVariable = spec.resultVariable; }
      var names = Object.keys(spec.parameters).filter(function (n) { return spec.parameters[n] !== ""; });
      if (names.length) {
        var params = moddle.create("spiffworkflow:Parameters", { parameters: [] });
        params.$parent = operator;
        params.parameters = names.map(function (n) {
          var p = moddle.create("spiffworkflow:Parameter", { id: n, type: "str", value: spec.parameters[n] });
          p.$parent = params;
          return p;
        });
        operator.parameters = params;
      }
      addExtension(element, operator);
    });
  }

  function messageHolder(bo) {
    if (is(bo, "bpmn:ReceiveTask") || is(bo, "bpmn:SendTask")) { return bo; }
    return (bo.eventDefinitions || []).filter(function (d) { return is(d, "bpmn:MessageEventDefinition"); })[0] || null;
  }

  // A bpmn:Message with that name (made when none exists) as the element's messageRef.
  function setMessage(element, name) {
    var bo = element.businessObject;
    var holder = messageHolder(bo);
    batch(function () {
      var message;
      if (name) {
        var definitions = modeler.getDefinitions();
        var roots = definitions.rootElements || [];
        message = roots.filter(function (r) { return is(r, "bpmn:Message") && r.name === name; })[0];
        if (!message) {
          message = bpmnFactory.create("bpmn:Message", { name: name });
          message.$parent = definitions;
          modeling.updateModdleProperties(element, definitions, { rootElements: roots.concat([message]) });
        }
      }
      if (holder === bo) {
        modeling.updateProperties(element, { messageRef: message });
      } else {
        modeling.updateModdleProperties(element, holder, { messageRef: message });
      }
    });
  }

  function setCondition(element, text) {
    editing += 1;
    try {
      var expression;
      if (text.trim()) {
        expression = bpmnFactory.create("bpmn:FormalExpression", { body: text });
      }
      modeling.updateProperties(element, { conditionExpression: expression });
    } finally { editing -= 1; }
  }

  function update(element, props) {
    editing += 1;
    try { modeling.updateProperties(element, props); } finally { editing -= 1; }
  }

  // --- the side panel ----------------------------------------------------------------------

  var fieldSeq = 0;

  function field(label, control, hint) {
    fieldSeq += 1;
    if (!control.id) { control.id = "p-" + (control.dataset.key || "f") + "-" + fieldSeq; }
    return el("div", { "class": "field" }, [
      el("label", { "for": control.id, text: label }), control,
      hint ? el("div", { "class": "hint muted", text: hint }) : null
    ]);
  }

  function input(key, value, onchange, extra) {
    var attrs = { type: "text", value: value || "", dataset: { key: key }, id: "p-" + key,
                  onchange: function (event) { onchange(event.target.value.trim()); } };
    Object.keys(extra || {}).forEach(function (k) { attrs[k] = extra[k]; });
    return el("input", attrs);
  }

  function textarea(key, value, onchange, rows) {
    return el("textarea", { id: "p-" + key, dataset: { key: key }, rows: String(rows || 4), spellcheck: "false",
                            value: value || "", onchange: function (event) { onchange(event.target.value); } });
  }

  function select(key, options, value, onchange) {
    var node = el("select", { id: "p-" + key, dataset: { key: key },
                              onchange: function (event) { onchange(event.target.value); } },
                  options.map(function (o) { return el("option", { value: o[0], text: o[1] }); }));
    node.value = value;
    return node;
  }

  function typeLabel(bo) {
    return L.kinds[bo.$type] || L.types[bo.$type] || bo.$type.replace(/^bpmn:/, "");
  }

  function render(element) {
    var keep = document.activeElement && panel.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    panel.textContent = "";
    fieldSeq = 0;
    if (!element || !element.businessObject || element.type === "label") {
      panel.appendChild(el("p", { "class": "muted", text: panel.dataset.empty || "" }));
      return;
    }
    var bo = element.businessObject;
    panel.appendChild(el("h2", { text: typeLabel(bo) }));
    panel.appendChild(field(L.id, el("input", { type: "text", value: bo.id, readonly: true, dataset: { key: "id" }, id: "p-id" })));
    panel.appendChild(field(L.name, input("name", bo.name, function (value) { rename(element, value); })));
    if (is(bo, "bpmn:Lane")) { laneFields(element); }
    if (is(bo, "bpmn:Task")) { taskFields(element); }
    if (is(bo, "bpmn:UserTask")) { userTaskFields(element); }
    if (is(bo, "bpmn:ServiceTask")) { serviceTaskFields(element); }
    if (is(bo, "bpmn:ScriptTask")) {
      panel.appendChild(field(L.script, textarea("script", bo.script, function (value) {
        update(element, { script: value || undefined });
      }, 6)));
    }
    if (messageHolder(bo)) { messageFields(element); }
    if (is(bo, "bpmn:SequenceFlow")) { flowFields(element); }
    if (is(bo, "bpmn:CallActivity")) {
      panel.appendChild(field(L.called_element, input("called", bo.calledElement, function (value) {
        update(element, { calledElement: value || undefined });
      })));
    }
    if (keep) {
      var again = panel.querySelector("[data-key='" + keep + "']");
      if (again) { again.focus(); }
    }
  }

  function rename(element, value) {
    var bo = element.businessObject;
    var old = bo.name || "";
    update(element, { name: value || undefined });
    if (is(bo, "bpmn:Lane") && old !== value && Object.prototype.hasOwnProperty.call(data.lane_roles, old)) {
      // Lanes map to roles by name: the role goes with the new name.
      if (value) { data.lane_roles[value] = data.lane_roles[old]; }
      delete data.lane_roles[old];
      markDirty();
    }
  }

  function laneFields(element) {
    var name = element.businessObject.name || "";
    var options = [["", L.role_default]].concat(data.roles.map(function (r) { return [r.value, r.label]; }));
    panel.appendChild(field(L.lane_role, select("lane-role", options, data.lane_roles[name] || "", function (value) {
      var lane = element.businessObject.name || "";
      if (value) { data.lane_roles[lane] = value; } else { delete data.lane_roles[lane]; }
      markDirty();
    })));
  }

  function taskFields(element) {
    var bo = element.businessObject;
    var options = TASK_KINDS.map(function (t) { return [t, L.kinds[t]]; });
    if (TASK_KINDS.indexOf(bo.$type) < 0) { options.push([bo.$type, typeLabel(bo)]); }
    panel.appendChild(field(L.kind, select("kind", options, bo.$type, function (type) {
      var replaced = bpmnReplace.replaceElement(element, { type: type });
      selection.select(replaced);
      render(replaced);
      var kind = panel.querySelector("[data-key='kind']");
      if (kind) { kind.focus(); }
    })));
  }

  function formUsers(key) {
    return registry.filter(function (e) {
      return is(e.businessObject, "bpmn:UserTask") && e.type !== "label" && getProperty(e.businessObject, "form") === key;
    }).length;
  }

  function userTaskFields(element) {
    var bo = element.businessObject;
    var form = getProperty(bo, "form");
    var keys = Object.keys(data.task_forms).sort();
    var options = [["", L.none]].concat(keys.map(function (k) { return [k, (data.task_forms[k] && data.task_forms[k].title) ? k + " · " + data.task_forms[k].title : k]; }));
    if (form && keys.indexOf(form) < 0) { options.push([form, form + " " + L.form_missing]); }
    options.push([NEW_FORM, L.new_form]);
    var newForm = el("div", { "class": "new-form", hidden: true });
    var formSelect = select("form", options, form, function (value) {
      if (value === NEW_FORM) {
        newForm.hidden = false;
        newForm.querySelector("input").focus();
        return;
      }
      newForm.hidden = true;
      setProperty(element, "form", value);
      render(element);
    });
    panel.appendChild(field(L.form, formSelect));
    var keyInput = el("input", { type: "text", id: "p-new-form-key", dataset: { key: "new-form-key" }, placeholder: "my_form" });
    var keyError = el("div", { "class": "error-text", hidden: true, text: L.form_key_invalid });
    newForm.appendChild(field(L.new_form_key, keyInput));
    newForm.appendChild(keyError);
    newForm.appendChild(el("button", { type: "button", "class": "secondary", id: "p-create-form", text: L.create_form, onclick: function () {
      var key = keyInput.value.trim();
      if (!IDENTIFIER.test(key) || Object.prototype.hasOwnProperty.call(data.task_forms, key)) {
        keyError.hidden = false;
        keyInput.setAttribute("aria-invalid", "true");
        return;
      }
      // A decision field is what every user task of the engine answers with.
      data.task_forms[key] = { type: "object", additionalProperties: false, required: ["decision"],
                               properties: { decision: { type: "string", enum: ["propose_approve", "propose_refuse"] },
                                             note: { type: "string", maxLength: 2000 } } };
      markDirty();
      setProperty(element, "form", key);
      render(element);
      var schema = panel.querySelector("[data-key='form-schema']");
      if (schema) { schema.focus(); }
    } }));
    panel.appendChild(newForm);
    if (form && Object.prototype.hasOwnProperty.call(data.task_forms, form)) {
      var users = formUsers(form);
      var jsonError = el("div", { "class": "error-text", id: "p-form-schema-error", role: "alert", hidden: true });
      var area = textarea("form-schema", Object.prototype.hasOwnProperty.call(schemaText, form) ? schemaText[form]
                          : JSON.stringify(data.task_forms[form], null, 2), function (text) { checkSchema(text); }, 10);
      var checkSchema = function (text) {
        var problem = null;
        var parsed;
        try {
          parsed = JSON.parse(text);
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) { problem = L.json_not_object; }
        } catch (error) {
          problem = fmt(L.json_error, { error: error.message });
        }
        jsonError.textContent = problem || "";
        jsonError.hidden = !problem;
        if (problem) {
          // Kept as typed (shown again when the task is selected again); saving waits for a fix.
          area.setAttribute("aria-invalid", "true");
          schemaText[form] = text;
          return;
        }
        area.removeAttribute("aria-invalid");
        delete schemaText[form];
        data.task_forms[form] = parsed;
        markDirty();
      };
      if (Object.prototype.hasOwnProperty.call(schemaText, form)) { checkSchema(schemaText[form]); }
      area.classList.add("code");
      area.setAttribute("aria-describedby", "p-form-schema-error");
      panel.appendChild(field(L.form_schema, area, users > 1 ? fmt(L.form_shared, { n: users }) : null));
      panel.appendChild(jsonError);
    }
    deadlineFields(element);
  }

  function deadlineFields(element) {
    var bo = element.businessObject;
    var value = getProperty(bo, "deadline");
    var kind = value.split(":")[0];
    var amount = value.indexOf(":") >= 0 ? value.slice(value.indexOf(":") + 1) : "";
    var options = [["", L.deadline_none]].concat(data.deadline_kinds.map(function (k) { return [k, L.deadline_kinds[k] || k]; }));
    if (kind && data.deadline_kinds.indexOf(kind) < 0) { options.push([kind, kind]); }
    var amountInput = el("input", { type: "number", min: "0.5", step: "0.5", id: "p-deadline-amount",
                                    dataset: { key: "deadline-amount" }, value: amount,
                                    hidden: !NEEDS_AMOUNT[kind] });
    var kindSelect = select("deadline-kind", options, kind, function () { write(); });
    amountInput.addEventListener("change", function () { write(); });
    function write() {
      var k = kindSelect.value;
      amountInput.hidden = !NEEDS_AMOUNT[k];
      if (NEEDS_AMOUNT[k] && !amountInput.value) { amountInput.value = "1"; }
      var next = !k ? "" : NEEDS_AMOUNT[k] ? k + ":" + amountInput.value : k;
      setProperty(element, "deadline", next);
    }
    var group = el("fieldset", { "class": "deadline-group" }, [
      el("legend", { text: L.deadline }),
      el("div", { "class": "inline" }, [kindSelect, el("label", { "class": "sr-only", "for": "p-deadline-amount", text: L.deadline_amount }), amountInput])
    ]);
    kindSelect.setAttribute("aria-label", L.deadline);
    panel.appendChild(group);
    panel.appendChild(field(L.deadline_variable, input("deadline-variable", getProperty(bo, "deadline_variable"), function (v) {
      setProperty(element, "deadline_variable", v);
    }, { placeholder: "due_days", pattern: "[A-Za-z_][A-Za-z0-9_]*" })));
  }

  function serviceTaskFields(element) {
    var bo = element.businessObject;
    var spec = operatorOf(bo);
    var byName = {};
    data.operations.forEach(function (o) { byName[o.name] = o; });
    var options = [["", L.choose]].concat(data.operations.map(function (o) { return [o.name, o.name]; }));
    if (spec.id && !byName[spec.id]) { options.push([spec.id, spec.id]); }
    var info = byName[spec.id];
    panel.appendChild(field(L.operation, select("operation", options, spec.id, function (value) {
      spec.id = value;
      setOperator(element, spec);
      render(element);
    }), info ? info.description : null));
    if (!spec.id) { return; }
    var names = info ? info.required.concat(info.optional) : [];
    Object.keys(spec.parameters).forEach(function (n) { if (names.indexOf(n) < 0) { names.push(n); } });
    var box = el("fieldset", { "class": "parameters" }, [el("legend", { text: L.parameters })]);
    names.forEach(function (n) {
      var required = info && info.required.indexOf(n) >= 0;
      var known = info && (required || info.optional.indexOf(n) >= 0);
      var label = n + (required ? " (" + L.required + ")" : known ? "" : " (" + L.other_parameter + ")");
      box.appendChild(field(label, input("param-" + n, spec.parameters[n], function (value) {
        spec.parameters[n] = value;
        setOperator(element, spec);
      }, { "class": "code", required: required || null })));
    });
    panel.appendChild(box);
    panel.appendChild(field(L.result_variable, input("result-variable", spec.resultVariable, function (value) {
      spec.resultVariable = value;
      setOperator(element, spec);
    }, { "class": "code" })));
  }

  function messageFields(element) {
    var holder = messageHolder(element.businessObject);
    var listId = "p-message-names";
    var names = (modeler.getDefinitions().rootElements || []).filter(function (r) { return is(r, "bpmn:Message") && r.name; })
      .map(function (r) { return r.name; });
    var box = input("message", holder.messageRef ? holder.messageRef.name : "", function (value) {
      setMessage(element, value);
    }, { list: listId, "class": "code" });
    panel.appendChild(field(L.message_name, box));
    panel.appendChild(el("datalist", { id: listId }, names.map(function (n) { return el("option", { value: n }); })));
  }

  function flowFields(element) {
    var bo = element.businessObject;
    var source = bo.sourceRef;
    var isDefault = source && source.default === bo;
    var text = bo.conditionExpression ? (bo.conditionExpression.body || "") : "";
    panel.appendChild(field(L.condition, textarea("condition", text, function (value) {
      setCondition(element, value);
    }, 3), isDefault ? L.default_flow : null));
    panel.lastChild.querySelector("textarea").classList.add("code");
  }

  // --- problems and changes on the diagram --------------------------------------------------

  // A problem may name an inner element (an event definition): the shape that holds it.
  function shapeFor(id) {
    if (!id) { return null; }
    var found = registry.get(id);
    if (found) { return found; }
    return registry.filter(function (e) {
      var bo = e.businessObject;
      return bo && (bo.eventDefinitions || []).some(function (d) { return d.id === id; });
    })[0] || null;
  }

  function clearMarkers(list, marker, overlayType) {
    list.forEach(function (id) { if (registry.get(id)) { canvas.removeMarker(id, marker); } });
    list.length = 0;
    if (overlayType) { overlays.remove({ type: overlayType }); }
  }

  function drawProblems(problems) {
    clearMarkers(markedProblems, "has-problem", "problems");
    problemList.textContent = "";
    problemCount.textContent = String(problems.length);
    problemCount.classList.toggle("ok", problems.length === 0);
    if (!problems.length) {
      problemList.appendChild(el("li", { "class": "none", text: L.no_problems }));
    }
    var counts = {};
    problems.forEach(function (p) {
      var shape = shapeFor(p.element);
      var item = el("li", { dataset: { element: shape ? shape.id : (p.element || ""), rule: p.rule || "" } }, [
        el("strong", { text: p.title || p.rule || "" }), " ", el("span", { text: p.message }),
        p.line ? el("span", { "class": "muted", text: " · " + fmt(L.line, { n: p.line }) }) : null
      ]);
      if (shape) {
        item.classList.add("clickable");
        item.tabIndex = 0;
        var go = function () { focusElement(shape.id); };
        item.addEventListener("click", go);
        item.addEventListener("keydown", function (event) { if (event.key === "Enter") { go(); } });
        counts[shape.id] = (counts[shape.id] || 0) + 1;
      }
      problemList.appendChild(item);
    });
    Object.keys(counts).forEach(function (id) {
      canvas.addMarker(id, "has-problem");
      markedProblems.push(id);
      overlays.add(id, "problems", { position: { top: -10, right: 10 },
                                     html: el("span", { "class": "problem-badge", text: String(counts[id]), title: String(counts[id]) }) });
    });
  }

  function drawChanges(changes) {
    markedChanges.forEach(function (id) {
      if (registry.get(id)) { canvas.removeMarker(id, "diff-added"); canvas.removeMarker(id, "diff-changed"); }
    });
    markedChanges.length = 0;
    changes.forEach(function (c) {
      var shape = registry.get(c.element);
      // The pool is the designer's frame around the process: colouring it would hide the rest.
      if ((c.change === "added" || c.change === "changed") && shape && shape.type !== "bpmn:Participant") {
        canvas.addMarker(c.element, c.change === "added" ? "diff-added" : "diff-changed");
        markedChanges.push(c.element);
      }
    });
  }

  function listChanges(changes) {
    changeList.textContent = "";
    changeSection.hidden = false;
    if (!changes.length) { changeList.appendChild(el("li", { "class": "muted", text: L.no_changes })); }
    changes.forEach(function (c) {
      var item = el("li", { "class": "change-" + c.change, dataset: { element: c.element } }, [
        el("span", { "class": "badge change " + c.change, text: L.change[c.change] || c.change }), " ",
        el("strong", { text: c.name || c.element }), el("span", { "class": "muted", text: " · " + c.type + " · " + c.element }),
        c.details && c.details.length ? el("ul", {}, c.details.map(function (d) { return el("li", { text: d }); })) : null
      ]);
      if (registry.get(c.element)) {
        item.classList.add("clickable");
        item.addEventListener("click", function () { focusElement(c.element); });
      }
      changeList.appendChild(item);
    });
  }

  function focusElement(id) {
    var shape = registry.get(id);
    if (!shape) { return; }
    selection.select(shape);
    if (shape.waypoints || shape.parent) {
      try { canvas.scrollToElement(shape, { top: 80, bottom: 80, left: 80, right: 80 }); } catch (e) { /* root */ }
    }
  }

  // --- server calls -------------------------------------------------------------------------

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, status: response.status, body: json };
      });
    });
  }

  function errorText(body, status) {
    var text = (body && (body.message || body.error)) || ("HTTP " + status);
    var fields = body && body.fields;
    if (fields && typeof fields === "object") {
      Object.keys(fields).forEach(function (k) { text += " · " + k + ": " + [].concat(fields[k]).join("; "); });
    }
    return text;
  }

  var saving = null;

  function save() {
    if (saving) { return saving; }
    var invalid = Object.keys(schemaText);
    if (invalid.length) {
      setStatus(L.json_blocks_save + " (" + invalid.join(", ") + ")", "error");
      return Promise.resolve(false);
    }
    container.dataset.saving = "true";
    setStatus(L.saving, "muted");
    saving = modeler.saveXML({ format: true }).then(function (result) {
      return post(data.urls.save, { xml: result.xml, lane_roles: data.lane_roles, task_forms: data.task_forms });
    }).then(function (answer) {
      if (!answer.ok) {
        setStatus(fmt(L.save_failed, { message: errorText(answer.body, answer.status) }), "error");
        return false;
      }
      saves += 1;
      dirty = false;
      delete root.dataset.dirty;
      data.problems = answer.body.problems || [];
      data.draft = true;
      drawProblems(data.problems);
      drawChanges(answer.body.changes || []);
      if (!changeSection.hidden) { listChanges(answer.body.changes || []); }
      var when = new Date(answer.body.saved_at || Date.now());
      setStatus(fmt(L.saved, { time: when.toLocaleTimeString(document.documentElement.lang || "vi"), n: data.problems.length }),
                data.problems.length ? "error" : "ok");
      container.dataset.problems = String(data.problems.length);
      container.dataset.saves = String(saves);
      return true;
    }).catch(function (error) {
      setStatus(fmt(L.save_failed, { message: error.message }), "error");
      return false;
    }).then(function (ok) {
      delete container.dataset.saving;
      saving = null;
      return ok;
    });
    return saving;
  }

  function deploy(comment) {
    var ready = dirty ? save() : Promise.resolve(true);
    return ready.then(function (ok) {
      if (!ok) { return; }
      container.dataset.deploying = "true";
      setStatus(L.deploying, "muted");
      return post(data.urls.deploy, { comment: comment }).then(function (answer) {
        delete container.dataset.deploying;
        if (answer.ok) {
          dirty = false;
          window.location.assign(answer.body.url);
          return;
        }
        if (answer.body && answer.body.problems) {
          data.problems = answer.body.problems;
          drawProblems(data.problems);
          container.dataset.problems = String(data.problems.length);
        }
        setStatus(fmt(L.deploy_failed, { message: errorText(answer.body, answer.status) }), "error");
      });
    });
  }

  function discard() {
    if (!window.confirm(L.discard_confirm)) { return; }
    post(data.urls.discard).then(function (answer) {
      if (!answer.ok) {
        setStatus(errorText(answer.body, answer.status), "error");
        return;
      }
      dirty = false;
      setStatus(L.discarded, "ok");
      window.location.reload();
    });
  }

  function showChanges() {
    fetch(data.urls.diff, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        listChanges(body.changes || []);
        drawChanges(body.changes || []);
        changeSection.scrollIntoView({ block: "nearest" });
      })
      .catch(function (error) { setStatus(error.message, "error"); });
  }

  // --- start --------------------------------------------------------------------------------

  // bpmn-js's own words (palette, context pad, replace menu) in the page's language.
  function translate(template, replacements) {
    var text = Object.prototype.hasOwnProperty.call(L.bpmn, template) ? L.bpmn[template] : template;
    return text.replace(/\{([^}]+)\}/g, function (all, key) {
      return replacements && replacements[key] !== undefined ? replacements[key] : all;
    });
  }

  function start(descriptor) {
    modeler = new window.BpmnJS({ container: container, keyboard: { bind: true },
                                  additionalModules: [{ translate: ["value", translate] }],
                                  moddleExtensions: { spiffworkflow: descriptor } });
    modeling = modeler.get("modeling");
    moddle = modeler.get("moddle");
    bpmnFactory = modeler.get("bpmnFactory");
    bpmnReplace = modeler.get("bpmnReplace");
    registry = modeler.get("elementRegistry");
    selection = modeler.get("selection");
    canvas = modeler.get("canvas");
    overlays = modeler.get("overlays");
    commandStack = modeler.get("commandStack");
    commandStack.registerHandler("motcua.batch", BatchHandler);
    window.motcuaDesigner = modeler; // for the browser test and the console

    var eventBus = modeler.get("eventBus");
    eventBus.on("selection.changed", function (event) { render(event.newSelection[0] || null); });
    eventBus.on("commandStack.changed", function () {
      if (container.dataset.state !== "ready") { return; }
      markDirty();
      if (editing) { return; }
      // Undo, redo or a change on the canvas: show what the selected element is now.
      var selected = selection.get()[0] || null;
      render(selected && registry.get(selected.id) ? selected : null);
    });
    return modeler.importXML(data.xml).then(function () {
      canvas.zoom("fit-viewport", "auto");
      drawProblems(data.problems || []);
      container.dataset.state = "ready";
    });
  }

  panel.dataset.empty = panel.textContent.trim();
  document.getElementById("save-draft").addEventListener("click", function () { save(); });
  document.getElementById("discard-draft").addEventListener("click", discard);
  document.getElementById("show-changes").addEventListener("click", showChanges);
  var dialog = document.getElementById("deploy-dialog");
  document.getElementById("deploy").addEventListener("click", function () {
    if (!dirty && !data.draft) {
      // Nothing was changed: deploying would only repeat the current version.
      setStatus(L.no_changes, "muted");
      return;
    }
    if (typeof dialog.showModal === "function") {
      dialog.returnValue = "";
      dialog.showModal();
    } else if (window.confirm(L.deploying)) {
      deploy("");
    }
  });
  dialog.addEventListener("close", function () {
    if (dialog.returnValue === "deploy") { deploy(document.getElementById("deploy-comment").value.trim()); }
  });
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "s" || event.key === "S")) {
      event.preventDefault();
      // A field being edited commits first (its change event), then the save sees it.
      if (document.activeElement && panel.contains(document.activeElement)) { document.activeElement.blur(); }
      save();
    }
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = L.leave_unsaved; return L.leave_unsaved; }
    return undefined;
  });

  if (!window.BpmnJS) {
    container.dataset.state = "error";
    return;
  }
  fetch(root.dataset.moddle, { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(start)
    .catch(function (error) {
      container.dataset.state = "error";
      container.textContent = fmt(L.load_failed, { message: error.message });
    });
})();
