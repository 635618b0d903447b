// The document writer's form as data: prescription lines added and removed (cloned from the
// <template>s of templates/_writer.html), the JSON the render route reads
// (teleconsult/documents/forms.py), and the server's reasons shown beside the fields they name.
import { el } from "./page.js";

const DRUG_FIELDS = ["drug", "dosage", "form", "directions", "duration", "packs", "renewals"];
const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => values[key]);

export class WriterForm {
  constructor(form, cfg) {
    this.form = form;
    this.t = cfg.i18n;
    this.profileUrl = cfg.profile_url;
    this.lines = form.querySelector("#writer-lines");
    this.problems = form.querySelector("#writer-problems");
    this.bizone = form.querySelector("#writer-bizone");
    this.serial = 0;
    this.bizone.addEventListener("change", () => this.showAld());
  }

  value(id) {
    return this.form.querySelector(`#${id}`).value.trim();
  }

  get template() {
    return this.value("writer-template");
  }

  // Show the fields of the chosen template only (hidden ones are not sent).
  showTemplate() {
    for (const part of this.form.querySelectorAll("[data-for]")) part.hidden = part.dataset.for !== this.template;
  }

  addLine(kind) {
    const item = document.getElementById(`writer-${kind}-line`).content.firstElementChild.cloneNode(true);
    item.dataset.kind = kind;
    this.serial += 1;
    for (const node of item.querySelectorAll("input[data-name], textarea[data-name]")) {
      node.id = `writer-line${this.serial}-${node.dataset.name}`;
    }
    for (const label of item.querySelectorAll("label[data-name]")) {
      label.htmlFor = `writer-line${this.serial}-${label.dataset.name}`;
    }
    item.querySelector("[data-remove]").addEventListener("click", () => this.removeLine(item));
    this.lines.append(item);
    this.renumber();
    this.showAld();
    return item;
  }

  removeLine(item) {
    const next = item.nextElementSibling || item.previousElementSibling;
    item.remove();
    this.renumber();
    (next ? next.querySelector("input, textarea") : this.form.querySelector("#writer-add-drug")).focus();
    this.form.dispatchEvent(new Event("change")); // the previewed document is no longer this one
  }

  // Legends, remove buttons and data-field paths follow the lines' order ("lines[2].duration").
  renumber() {
    [...this.lines.children].forEach((item, index) => {
      const n = index + 1;
      item.querySelector("legend").textContent = format(this.t.line, { n });
      item.querySelector("[data-remove]").textContent = format(this.t.remove_line, { n });
      for (const node of item.querySelectorAll("input[data-name], textarea[data-name]")) {
        node.dataset.field = `lines[${n}].${node.dataset.name}`;
      }
    });
  }

  showAld() {
    for (const box of this.lines.querySelectorAll("[data-ald]")) box.hidden = !this.bizone.checked;
  }

  // The render route's JSON: only the chosen template's fields, empty optional ones left out.
  collect() {
    const template = this.template;
    const data = { template, lang: this.value("writer-lang"), patient: {} };
    const put = (target, key, value) => { if (value !== "") target[key] = value; };
    const patient = { last_name: "writer-last-name", first_names: "writer-first-names", sex: "writer-sex",
      birth_date: "writer-birth-date" };
    if (template === "prescription") Object.assign(patient, { weight_kg: "writer-weight", height_cm: "writer-height" });
    for (const [key, id] of Object.entries(patient)) put(data.patient, key, this.value(id));
    // names are required: sent even when empty, so that the server says so
    data.patient.last_name ??= "";
    data.patient.first_names ??= "";
    if (template === "prescription") {
      data.bizone = this.bizone.checked;
      data.lines = [...this.lines.children].map((item) => {
        const line = {};
        const read = (name) => item.querySelector(`[data-name="${name}"]:not(label)`);
        if (item.dataset.kind === "text") line.text = read("text").value.trim();
        else for (const name of DRUG_FIELDS) put(line, name, read(name).value.trim());
        if (item.dataset.kind === "drug") for (const name of ["drug", "dosage", "directions"]) line[name] ??= "";
        if (data.bizone) line.ald = read("ald").checked;
        return line;
      });
    } else {
      for (const node of this.form.querySelectorAll(`[data-for="${template}"] [data-field]`)) {
        put(data, node.dataset.field, node.value.trim());
      }
    }
    return data;
  }

  // The patient's identity as the patient typed it (box_messages.cleanIdentity): fills what it has.
  fillIdentity(identity) {
    const ids = { last_name: "writer-last-name", first_names: "writer-first-names", sex: "writer-sex",
      birth_date: "writer-birth-date" };
    for (const [key, id] of Object.entries(ids)) {
      if (identity[key]) this.form.querySelector(`#${id}`).value = identity[key];
    }
  }

  clearProblems() {
    this.problems.replaceChildren();
    for (const node of this.form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  labelOf(node) {
    const label = this.form.querySelector(`label[for="${node.id}"]`);
    const text = label ? label.textContent.trim() : "";
    const line = node.closest(".writer-line");
    return line ? `${line.querySelector("legend").textContent}, ${text}` : text;
  }

  // The server's 400: each reason beside its field's label (role=alert announces the list), and
  // a link to the profile when the profile lacks what this template prints.
  showProblems(body) {
    this.clearProblems();
    const items = (body.problems || []).map((problem) => {
      const prefix = `${problem.field}: `;
      const reason = problem.message.startsWith(prefix) ? problem.message.slice(prefix.length) : problem.message;
      const node = this.form.querySelector(`[data-field="${CSS.escape(problem.field)}"]`);
      if (!node || node.closest("[hidden]")) return el("li", {}, reason);
      node.setAttribute("aria-invalid", "true");
      return el("li", {}, format(this.t.problem, { label: this.labelOf(node), reason }));
    });
    if (!items.length) items.push(el("li", {}, body.error || this.t.failed));
    this.problems.append(el("p", {}, this.t.refused), el("ul", {}, ...items));
    if ((body.missing || []).length) {
      this.problems.append(el("p", {}, el("a", { href: this.profileUrl, target: "_blank", rel: "noopener" },
        this.t.complete_profile)));
    }
    this.problems.scrollIntoView({ block: "nearest" });
  }
}
