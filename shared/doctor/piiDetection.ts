/**
 * Recognising personal data: by column name, and by sampled values (patterns, with the
 * Luhn checksum for card numbers so that long ids are not taken for cards).
 */

/** Kinds of personal data the doctor recognises. */
export type PiiKind = 'email' | 'phone' | 'card' | 'national_id' | 'iban' | 'name' | 'address' | 'birth_date' | 'ip';

const NAME_PATTERNS: ReadonlyArray<[PiiKind, RegExp]> = [
  ['email', /(^|_)e_?mail(_?address)?($|_)/],
  ['phone', /(^|_)(phone|mobile|cell|telephone|tel|fax|msisdn)(_?(number|no))?($|_)/],
  ['card', /(^|_)(card_?(number|no|num)|credit_?card|cc_?(number|num|no)|pan)($|_)/],
  [
    'national_id',
    /(^|_)(ssn|social_security(_number)?|national_?id|nin|nino|passport(_?(number|no))?|tax_?id|tin|sin)($|_)/,
  ],
  ['iban', /(^|_)(iban|bank_?account(_?(number|no))?|account_?number)($|_)/],
  ['name', /(^|_)(first_?name|last_?name|full_?name|surname|given_?name|family_?name)($|_)/],
  ['address', /(^|_)(street|address|home_address|postal_address)($|_)/],
  ['birth_date', /(^|_)(dob|date_of_birth|birth_?date|birthday)($|_)/],
  ['ip', /(^|_)(ip|ip_?address|ipv4|ipv6)($|_)/],
];

/** Splits camelCase and separators into lower snake case: `customerEmail` → `customer_email`. */
function snake(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase();
}

/** The kind of personal data a column's name suggests, or undefined. */
export function piiKindOfName(column: string): PiiKind | undefined {
  const s = snake(column);
  return NAME_PATTERNS.find(([, re]) => re.test(s))?.[0];
}

/** True when a digit string passes the Luhn checksum (card numbers do; random digits do 1 time in 10). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (d < 0 || d > 9) return false;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[A-Za-z]{2,24}$/;
const CARD = /^\d(?:[ -]?\d){12,18}$/;
const SSN = /^\d{3}-\d{2}-\d{4}$/;
const IBAN = /^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/;
const PHONE = /^\+?\(?\d[\d ().-]{6,20}\d$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** The kind of personal data one value looks like, or undefined. */
export function piiKindOfValue(value: string): PiiKind | undefined {
  const v = value.trim();
  if (v.length < 5 || v.length > 64) return undefined;
  if (EMAIL.test(v)) return 'email';
  if (SSN.test(v)) return 'national_id';
  if (CARD.test(v)) {
    const digits = v.replace(/[ -]/g, '');
    if (luhnValid(digits)) return 'card';
  }
  if (IBAN.test(v.replace(/ /g, ''))) return 'iban';
  if (IPV4.test(v)) return 'ip';
  if (PHONE.test(v)) {
    const digits = v.replace(/\D/g, '');
    // A phone number is written with a + or separators; a bare run of digits is more likely an id.
    if (digits.length >= 9 && digits.length <= 15 && /[+ ().-]/.test(v)) return 'phone';
  }
  return undefined;
}

/**
 * The kind of personal data most sampled values of a column look like, when at least half
 * of the non-empty values (and at least one) match the same kind; otherwise undefined.
 */
export function piiKindOfValues(values: readonly string[]): PiiKind | undefined {
  const counts = new Map<PiiKind, number>();
  let seen = 0;
  for (const value of values) {
    if (value.trim() === '') continue;
    seen += 1;
    const kind = piiKindOfValue(value);
    if (kind) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  let best: [PiiKind, number] | undefined;
  for (const entry of counts) if (!best || entry[1] > best[1]) best = entry;
  return best && best[1] * 2 >= seen ? best[0] : undefined;
}
