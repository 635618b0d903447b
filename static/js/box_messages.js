// Messages between the clinician's and the patient's pages, carried by the consultation's box
// like documents (same encryption, same deletion at the end) but not files: the documents panel
// does not list them (static/js/documents.js hands them to its onMessage hook).
// A message's kind is its media type, which lives in the document's encrypted metadata: the
// server sees one more small ciphertext and cannot tell a message from a file.
//
// Today: the clinician asks for the patient's identity (IDENTITY_REQUEST, body {}), the patient
// answers with it (IDENTITY, body {last_name, first_names, sex, birth_date}), which pre-fills the
// clinician's document writer (static/js/writer.js, static/js/identity.js).

const PREFIX = "application/vnd.teleconsult.";
export const IDENTITY_REQUEST = `${PREFIX}identity-request+json`;
export const IDENTITY = `${PREFIX}identity+json`;
const MAX_BYTES = 4096; // a message is a few fields; anything larger is not one of ours
const MAX_NAME = 120; // teleconsult/documents/forms.py SHORT
const SEXES = ["F", "M", "X"];

export function isMessage(type) {
  return typeof type === "string" && type.startsWith(PREFIX) && type.endsWith("+json");
}

/** A message ready for the panel's send(file): JSON in a File of the message's type. */
export function messageFile(type, name, body) {
  return new File([JSON.stringify(body)], `${name}.json`, { type });
}

/** The body of a message the panel handed over (decrypted in this browser); throws if it is
 * not a small JSON object. */
export async function readMessage(message) {
  const blob = await message.read();
  if (blob.size > MAX_BYTES) throw new RangeError("message too large");
  const body = JSON.parse(await blob.text());
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new TypeError("not an object");
  return body;
}

// Control characters, and bidirectional controls (which would show a name reversed), as the
// server strips them from names typed in the waiting room.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function oneLine(value) {
  if (typeof value !== "string") return "";
  const visible = value.replace(BIDI_CONTROLS, "").replace(CONTROLS, " ");
  return visible.split(/\s+/).filter(Boolean).join(" ").slice(0, MAX_NAME);
}

/** An identity as typed by the patient, kept only in its expected shape (the other side may
 * send anything): names on one line, sex F/M/X or "", a YYYY-MM-DD date not after `today`. */
export function cleanIdentity(body, today = new Date()) {
  const birth = typeof body.birth_date === "string" && /^\d{4}-\d{2}-\d{2}$/.test(body.birth_date)
    ? body.birth_date : "";
  const latest = localDay(today);
  return {
    last_name: oneLine(body.last_name),
    first_names: oneLine(body.first_names),
    sex: SEXES.includes(body.sex) ? body.sex : "",
    birth_date: birth && birth <= latest ? birth : "",
  };
}

/** A date as YYYY-MM-DD in this browser's time zone (what <input type=date> shows). */
export function localDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
