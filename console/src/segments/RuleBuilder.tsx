// The visual rule builder: every DSL element (condition types, operators, window_days, where filters,
// dotted property paths, nested AND/OR groups to the depth limit). Each control is labelled and shows
// the API's validation message for its JSON pointer.
import {
  ActionIcon,
  Autocomplete,
  Badge,
  Button,
  Code,
  Group as Row,
  Paper,
  SegmentedControl,
  Select,
  Stack,
  Text,
  TextInput,
} from '@mantine/core';
import { useEffect, useState } from 'react';
import {
  COMPARISON_OPERATORS,
  CONDITION_TYPES,
  type ConditionType,
  type Group,
  isGroup,
  isObject,
  type JsonObject,
  MAX_DEPTH,
  METRICS,
  newCondition,
  newGroup,
  OPERATOR_LABELS,
  PROPERTY_OPERATORS,
  RECENCY_OPERATORS,
  formatScalar,
  parseScalar,
  valueForOperator,
  withKey,
} from './dsl';

export interface Suggestions {
  eventTypes: string[];
  properties: (eventType: string | null) => string[];
}

interface Shared {
  errors: Record<string, string>;
  readOnly: boolean;
  suggestions: Suggestions;
}

interface BuilderProps extends Shared {
  definition: Group;
  onChange: (definition: Group) => void;
  /** Prefix of the API's pointers for this document (`/definition`). */
  pointer: string;
}

export function RuleBuilder({ definition, onChange, pointer, ...shared }: BuilderProps) {
  return (
    <GroupEditor
      group={definition}
      onChange={(g) => onChange(g as Group)}
      pointer={pointer}
      depth={1}
      label="Segment rules"
      {...shared}
    />
  );
}

function operatorOptions(operators: readonly string[]) {
  return operators.map((value) => ({ value, label: OPERATOR_LABELS[value] ?? value }));
}

interface GroupProps extends Shared {
  group: Group;
  onChange: (group: JsonObject) => void;
  onRemove?: () => void;
  pointer: string;
  depth: number;
  label: string;
}

function GroupEditor({ group, onChange, onRemove, pointer, depth, label, ...shared }: GroupProps) {
  const { errors, readOnly } = shared;
  // Typed in the JSON tab, an element can be anything (`null`, `1`): only objects are conditions.
  const conditions: unknown[] = Array.isArray(group.conditions) ? group.conditions : [];
  const setConditions = (next: unknown[]) => onChange(withKey(group, 'conditions', next));
  const groupError = errors[`${pointer}/conditions`] ?? errors[pointer];
  return (
    <Paper withBorder p="sm" radius="md" role="group" aria-label={label} data-depth={depth}>
      <Stack gap="xs">
        <Row justify="space-between" wrap="wrap" gap="xs">
          <Row gap="xs">
            <Text size="sm" fw={600} id={`${idOf(pointer)}-logic-label`}>
              Match
            </Text>
            <SegmentedControl
              size="xs"
              aria-labelledby={`${idOf(pointer)}-logic-label`}
              data={[
                { value: 'AND', label: 'ALL (AND)' },
                { value: 'OR', label: 'ANY (OR)' },
              ]}
              value={String(group.logic)}
              onChange={(logic) => onChange(withKey(group, 'logic', logic))}
              readOnly={readOnly}
              disabled={readOnly}
            />
            <Text size="sm">of these conditions</Text>
          </Row>
          {onRemove && !readOnly && (
            <Button size="xs" variant="subtle" color="red" onClick={onRemove} aria-label={`Remove group (${label})`}>
              Remove group
            </Button>
          )}
        </Row>
        {errors[`${pointer}/logic`] && (
          <Text c="red" size="sm" role="alert">
            {errors[`${pointer}/logic`]}
          </Text>
        )}
        {conditions.map((node, index) => {
          const here = `${pointer}/conditions/${index}`;
          const replace = (next: JsonObject) => setConditions(conditions.map((c, i) => (i === index ? next : c)));
          const remove = () => setConditions(conditions.filter((_, i) => i !== index));
          const name = `Condition ${label === 'Segment rules' ? '' : `${label.replace('Segment rules, ', '')} › `}${index + 1}`;
          if (!isObject(node))
            return (
              <NotAnObject
                key={index}
                value={node}
                onRemove={remove}
                label={name}
                pointer={here}
                errors={errors}
                readOnly={readOnly}
              />
            );
          return isGroup(node) ? (
            <GroupEditor
              key={index}
              group={node}
              onChange={replace}
              onRemove={remove}
              pointer={here}
              depth={depth + 1}
              label={`${label}, group ${index + 1}`}
              {...shared}
            />
          ) : (
            <ConditionEditor
              key={index}
              condition={node}
              onChange={replace}
              onRemove={remove}
              pointer={here}
              label={name}
              {...shared}
            />
          );
        })}
        {conditions.length === 0 && (
          <Text size="sm" c="dimmed">
            No conditions yet.
          </Text>
        )}
        {groupError && (
          <Text c="red" size="sm" role="alert">
            {groupError}
          </Text>
        )}
        {!readOnly && (
          <Row gap="xs">
            <Button
              size="xs"
              variant="light"
              onClick={() =>
                setConditions([...conditions, newCondition('event_count', shared.suggestions.eventTypes[0])])
              }
            >
              + Condition
            </Button>
            {depth < MAX_DEPTH && (
              <Button size="xs" variant="default" onClick={() => setConditions([...conditions, newGroup()])}>
                + Group
              </Button>
            )}
          </Row>
        )}
      </Stack>
    </Paper>
  );
}

function idOf(pointer: string): string {
  return `f${pointer.replace(/[^a-zA-Z0-9]+/g, '-')}`;
}

interface ConditionProps extends Shared {
  condition: JsonObject;
  onChange: (condition: JsonObject) => void;
  onRemove: () => void;
  pointer: string;
  label: string;
}

function ConditionEditor({ condition, onChange, onRemove, pointer, label, ...shared }: ConditionProps) {
  const { errors, readOnly, suggestions } = shared;
  const type = String(condition.type ?? '');
  const set = (key: string, value: unknown) => onChange(withKey(condition, key, value));
  const err = (key: string) => errors[`${pointer}/${key}`];
  const eventType = typeof condition.event_type === 'string' ? condition.event_type : null;
  const changeType = (next: string | null) => {
    if (!next || next === type) return;
    onChange(newCondition(next as ConditionType, eventType ?? suggestions.eventTypes[0]));
  };
  const eventTypeField = (
    <Autocomplete
      label="Event type"
      data={suggestions.eventTypes}
      value={eventType ?? ''}
      onChange={(v) => set('event_type', v)}
      error={err('event_type')}
      readOnly={readOnly}
      w={200}
    />
  );
  const propertyField = (name: string, forEvent: string | null) => (
    <Autocomplete
      label={name === 'property' && type === 'user_property' ? 'User property' : 'Property path'}
      description="dotted, e.g. address.city"
      data={suggestions.properties(forEvent)}
      value={typeof condition[name] === 'string' ? (condition[name] as string) : ''}
      onChange={(v) => set(name, v)}
      error={err(name)}
      readOnly={readOnly}
      w={200}
    />
  );
  const operatorField = (operators: readonly string[]) => (
    <Select
      label="Operator"
      data={operatorOptions(operators)}
      value={typeof condition.operator === 'string' ? condition.operator : null}
      onChange={(op) => {
        if (!op) return;
        if (type === 'user_property')
          onChange(withKey(withKey(condition, 'operator', op), 'value', valueForOperator(op, condition.value)));
        else set('operator', op);
      }}
      error={err('operator')}
      readOnly={readOnly}
      allowDeselect={false}
      w={170}
    />
  );
  const windowField = (required: boolean) => (
    <ScalarInput
      label={required ? 'Window (days)' : 'Within last (days)'}
      placeholder={required ? undefined : 'all time'}
      value={condition.window_days}
      onChange={(v) => set('window_days', v === '' && !required ? undefined : v)}
      error={err('window_days')}
      readOnly={readOnly}
      numeric
      w={150}
    />
  );
  return (
    <Paper
      withBorder
      p="sm"
      radius="sm"
      bg="var(--mantine-color-gray-0)"
      role="group"
      aria-label={label}
      data-node="condition"
    >
      <Stack gap="xs">
        <Row align="flex-end" wrap="wrap" gap="xs">
          <Select
            label="Condition type"
            data={CONDITION_TYPES.map((t) => ({ value: t, label: t }))}
            value={CONDITION_TYPES.includes(type as ConditionType) ? type : null}
            onChange={changeType}
            error={err('type')}
            readOnly={readOnly}
            allowDeselect={false}
            w={160}
          />
          {type === 'event_count' && (
            <>
              {eventTypeField}
              {operatorField(COMPARISON_OPERATORS)}
              <ScalarInput
                label="Count"
                value={condition.value}
                onChange={(v) => set('value', v)}
                error={err('value')}
                readOnly={readOnly}
                numeric
                w={110}
              />
              {windowField(false)}
            </>
          )}
          {type === 'monetary' && (
            <>
              {eventTypeField}
              <Select
                label="Metric"
                data={[...METRICS]}
                value={typeof condition.metric === 'string' ? condition.metric : null}
                onChange={(v) => v && set('metric', v)}
                error={err('metric')}
                readOnly={readOnly}
                allowDeselect={false}
                w={100}
              />
              {propertyField('property', eventType)}
              {operatorField(COMPARISON_OPERATORS)}
              <ScalarInput
                label="Amount"
                value={condition.value}
                onChange={(v) => set('value', v)}
                error={err('value')}
                readOnly={readOnly}
                numeric
                w={110}
              />
              {windowField(false)}
            </>
          )}
          {type === 'recency' && (
            <>
              {eventTypeField}
              {operatorField(RECENCY_OPERATORS)}
              {windowField(true)}
            </>
          )}
          {type === 'user_property' && (
            <>
              {propertyField('property', null)}
              {operatorField(PROPERTY_OPERATORS)}
              <FilterValue
                filter={condition}
                onChange={(v) => set('value', v)}
                error={err('value')}
                readOnly={readOnly}
              />
            </>
          )}
          {!readOnly && (
            <Button size="xs" variant="subtle" color="red" onClick={onRemove} aria-label={`Remove ${label}`}>
              Remove
            </Button>
          )}
        </Row>
        {(type === 'event_count' || type === 'monetary') && (
          <WhereFilters
            filters={Array.isArray(condition.where) ? condition.where : []}
            onChange={(where) => set('where', where.length || condition.where !== undefined ? where : undefined)}
            pointer={`${pointer}/where`}
            eventType={eventType}
            label={label}
            {...shared}
          />
        )}
      </Stack>
    </Paper>
  );
}

interface WhereProps extends Shared {
  filters: unknown[];
  onChange: (filters: unknown[]) => void;
  pointer: string;
  eventType: string | null;
  label: string;
}

function WhereFilters({ filters, onChange, pointer, eventType, label, errors, readOnly, suggestions }: WhereProps) {
  const replace = (index: number, next: JsonObject) => onChange(filters.map((f, i) => (i === index ? next : f)));
  return (
    <Stack gap={4} pl="md">
      {filters.map((filter, index) => {
        const here = `${pointer}/${index}`;
        if (!isObject(filter))
          return (
            <NotAnObject
              key={index}
              value={filter}
              onRemove={() => onChange(filters.filter((_, i) => i !== index))}
              label={`${label} where ${index + 1}`}
              pointer={here}
              errors={errors}
              readOnly={readOnly}
            />
          );
        const set = (key: string, value: unknown) => replace(index, withKey(filter, key, value));
        return (
          <Row
            key={index}
            align="flex-end"
            gap="xs"
            wrap="wrap"
            role="group"
            aria-label={`${label} where ${index + 1}`}
          >
            <Badge variant="light" mb={8}>
              where
            </Badge>
            <Autocomplete
              label="Payload property"
              data={suggestions.properties(eventType)}
              value={typeof filter.property === 'string' ? filter.property : ''}
              onChange={(v) => set('property', v)}
              error={errors[`${here}/property`]}
              readOnly={readOnly}
              w={180}
            />
            <Select
              label="Operator"
              data={operatorOptions(PROPERTY_OPERATORS)}
              value={typeof filter.operator === 'string' ? filter.operator : null}
              onChange={(op) =>
                op &&
                replace(index, withKey(withKey(filter, 'operator', op), 'value', valueForOperator(op, filter.value)))
              }
              error={errors[`${here}/operator`]}
              readOnly={readOnly}
              allowDeselect={false}
              w={160}
            />
            <FilterValue
              filter={filter}
              onChange={(v) => set('value', v)}
              error={errors[`${here}/value`] ?? errors[here]}
              readOnly={readOnly}
            />
            {!readOnly && (
              <ActionIcon
                variant="subtle"
                color="red"
                mb={4}
                aria-label={`Remove ${label} where ${index + 1}`}
                onClick={() => onChange(filters.filter((_, i) => i !== index))}
              >
                ×
              </ActionIcon>
            )}
          </Row>
        );
      })}
      {errors[pointer] && (
        <Text c="red" size="sm" role="alert">
          {errors[pointer]}
        </Text>
      )}
      {!readOnly && (
        <div>
          <Button
            size="compact-xs"
            variant="subtle"
            onClick={() =>
              onChange([
                ...filters,
                { property: suggestions.properties(eventType)[0] ?? 'path', operator: 'eq', value: '' },
              ])
            }
          >
            + where
          </Button>
        </div>
      )}
    </Stack>
  );
}

/** An element typed in the JSON tab that is not an object: named, removable, never edited as one. */
function NotAnObject({
  value,
  onRemove,
  label,
  pointer,
  errors,
  readOnly,
}: {
  value: unknown;
  onRemove: () => void;
  label: string;
  pointer: string;
  errors: Record<string, string>;
  readOnly: boolean;
}) {
  // The API names the element itself or a key it lacks (`…/0/type`).
  const error = Object.entries(errors).find(([p]) => p === pointer || p.startsWith(`${pointer}/`))?.[1];
  return (
    <Paper withBorder p="sm" radius="sm" role="group" aria-label={label} data-node="invalid">
      <Row justify="space-between" wrap="nowrap" gap="xs">
        <Text c="red" size="sm" role="alert" flex={1}>
          Not an object: <Code>{JSON.stringify(value)}</Code>. Fix it in the JSON tab or remove it.
          {error && ` ${error}`}
        </Text>
        {!readOnly && (
          <Button size="xs" variant="subtle" color="red" flex="none" onClick={onRemove} aria-label={`Remove ${label}`}>
            Remove
          </Button>
        )}
      </Row>
    </Paper>
  );
}

function FilterValue({
  filter,
  onChange,
  error,
  readOnly,
}: {
  filter: JsonObject;
  onChange: (value: unknown) => void;
  error: string | undefined;
  readOnly: boolean;
}) {
  const operator = filter.operator;
  if (operator === 'exists' || operator === 'not_exists') return null;
  if (operator === 'in' || operator === 'not_in') {
    const list = Array.isArray(filter.value) ? filter.value : [];
    return <ListInput value={list} onChange={onChange} error={error} readOnly={readOnly} />;
  }
  return (
    <ScalarInput label="Value" value={filter.value} onChange={onChange} error={error} readOnly={readOnly} w={160} />
  );
}

/** Comma-separated values; each is read like a single value box (numbers, true/false, "quoted" text). */
function ListInput({
  value,
  onChange,
  error,
  readOnly,
}: {
  value: unknown[];
  onChange: (v: unknown[]) => void;
  error?: string;
  readOnly: boolean;
}) {
  const shown = value.map(formatScalar).join(', ');
  const [text, setText] = useState(shown);
  useEffect(() => {
    if (JSON.stringify(splitList(text)) !== JSON.stringify(value)) setText(shown);
  }, [shown]);
  return (
    <TextInput
      label="Values"
      description="comma-separated"
      value={text}
      onChange={(e) => {
        setText(e.currentTarget.value);
        onChange(splitList(e.currentTarget.value));
      }}
      error={error}
      readOnly={readOnly}
      w={220}
    />
  );
}

function splitList(text: string): unknown[] {
  return text.trim() === '' ? [] : text.split(',').map((part) => parseScalar(part.trim()));
}

/**
 * A text box for one JSON value. It keeps what is typed (so "1." can become "1.5") and hands the parsed
 * value up; text that is not a number in a numeric box goes up as a string, for the API to reject at
 * this field.
 */
function ScalarInput({
  label,
  value,
  onChange,
  error,
  readOnly,
  numeric = false,
  placeholder,
  w,
}: {
  label: string;
  value: unknown;
  onChange: (value: unknown) => void;
  error: string | undefined;
  readOnly: boolean;
  numeric?: boolean;
  placeholder?: string | undefined;
  w: number;
}) {
  const shown = numeric && typeof value === 'string' ? value : formatScalar(value);
  const parse = (text: string): unknown => {
    if (!numeric) return parseScalar(text);
    const parsed = parseScalar(text);
    return typeof parsed === 'number' ? parsed : text;
  };
  const [text, setText] = useState(shown);
  useEffect(() => {
    if (parse(text) !== value) setText(shown);
  }, [shown]);
  return (
    <TextInput
      label={label}
      placeholder={placeholder}
      value={text}
      inputMode={numeric ? 'decimal' : undefined}
      onChange={(e) => {
        setText(e.currentTarget.value);
        onChange(parse(e.currentTarget.value));
      }}
      error={error}
      readOnly={readOnly}
      w={w}
    />
  );
}
