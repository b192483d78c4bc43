// The segment DSL (docs/segments.md) as the builder edits it. The builder works on the JSON document
// itself and only ever sets or deletes the keys a person touches, so a definition opened and saved
// unchanged is byte-for-byte the same document (key order included).

export const MAX_DEPTH = 5;

export const CONDITION_TYPES = ['event_count', 'monetary', 'recency', 'user_property'] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export const COMPARISON_OPERATORS = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const;
export const RECENCY_OPERATORS = ['gt', 'gte', 'lt', 'lte'] as const;
export const PROPERTY_OPERATORS = [
  'eq',
  'neq',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'not_in',
  'contains',
  'exists',
  'not_exists',
] as const;
export const METRICS = ['sum', 'avg', 'min', 'max', 'count'] as const;

export const OPERATOR_LABELS: Record<string, string> = {
  eq: '= equals',
  neq: '≠ not equal',
  gt: '> greater than',
  gte: '≥ at least',
  lt: '< less than',
  lte: '≤ at most',
  in: 'in list',
  not_in: 'not in list',
  contains: 'contains',
  exists: 'exists',
  not_exists: 'does not exist',
};

export type Scalar = string | number | boolean;
export type JsonObject = { [key: string]: unknown };

export interface Group extends JsonObject {
  logic: 'AND' | 'OR';
  conditions: JsonObject[];
}

/** A JSON object (not null, not an array): the only thing a condition, group or filter can be. */
export function isObject(node: unknown): node is JsonObject {
  return typeof node === 'object' && node !== null && !Array.isArray(node);
}

export function isGroup(node: unknown): node is Group {
  return isObject(node) && node.type === undefined && 'logic' in node;
}

export function newCondition(type: ConditionType, eventType = 'page_viewed'): JsonObject {
  switch (type) {
    case 'event_count':
      return { type, event_type: eventType, operator: 'gte', value: 1 };
    case 'monetary':
      return { type, event_type: eventType, property: 'total', metric: 'sum', operator: 'gte', value: 100 };
    case 'recency':
      return { type, event_type: eventType, operator: 'lt', window_days: 7 };
    case 'user_property':
      return { type, property: 'plan', operator: 'eq', value: 'pro' };
  }
}

export function newGroup(): Group {
  return { logic: 'AND', conditions: [newCondition('event_count')] };
}

export function emptyDefinition(): Group {
  return { logic: 'AND', conditions: [] };
}

/** A copy of `node` with `key` set (kept in place when present) or removed when `value` is undefined. */
export function withKey(node: JsonObject, key: string, value: unknown): JsonObject {
  if (value === undefined) {
    const { [key]: _removed, ...rest } = node;
    void _removed;
    return rest;
  }
  return { ...node, [key]: value };
}

/** The value a property filter should hold after its operator changes, or the old one if it still fits. */
export function valueForOperator(operator: string, value: unknown): unknown {
  if (operator === 'exists' || operator === 'not_exists') return undefined;
  if (operator === 'in' || operator === 'not_in') {
    if (Array.isArray(value)) return value;
    return value === undefined || value === null ? [] : [value];
  }
  if (Array.isArray(value)) return value[0] ?? '';
  return value ?? '';
}

/**
 * Text typed into a value box → the JSON scalar it means: numbers and true/false as such, anything
 * else a string. `"…"` forces a string (so "42" can be matched as text).
 */
export function parseScalar(text: string): Scalar {
  const trimmed = text.trim();
  if (trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"')) return trimmed.slice(1, -1);
  if (trimmed === 'true') return true;
  if (trimmed === 'false') return false;
  if (trimmed !== '' && /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed)) return Number(trimmed);
  return text;
}

/** The inverse of `parseScalar`: a string that reads as a number or boolean is shown quoted. */
export function formatScalar(value: unknown): string {
  if (typeof value === 'string') {
    const reparsed = parseScalar(value);
    return typeof reparsed === 'string' && reparsed === value ? value : `"${value}"`;
  }
  if (value === undefined || value === null) return '';
  return String(value);
}
