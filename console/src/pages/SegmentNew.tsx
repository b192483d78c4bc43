// New Segment: name, type and rules in one form; Save creates the segment with its first version.
// Rules drafted from a description make it an `ai` segment that keeps the prompts with its version.
// A lookalike has no rules: its definition is a seed and a size or score (`LookalikeForm`).
import { Button, Group, Select, Stack, Textarea, TextInput } from '@mantine/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError } from '../api/client';
import type { Segment } from '../api/types';
import { ErrorNotice, PageHeader } from '../app/feedback';
import { useWorkspace } from '../app/session';
import { AudienceDraft } from '../segments/AudienceDraft';
import { DefinitionEditor } from '../segments/DefinitionEditor';
import { emptyLookalike, LookalikeForm } from '../segments/LookalikeForm';
import { emptyDefinition, type Group as DslGroup } from '../segments/dsl';

export default function SegmentNew() {
  const navigate = useNavigate();
  const client = useQueryClient();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [type, setType] = useState('rule');
  const [definition, setDefinition] = useState<DslGroup>(emptyDefinition);
  const [lookalike, setLookalike] = useState(emptyLookalike);
  // Every prompt that went into the rules, in order (a refinement adds one). They are stored joined
  // by "and", which is what a refinement means: its conditions are AND-ed to the rules before it.
  const [prompts, setPrompts] = useState<string[]>([]);
  const { can } = useWorkspace();
  // Rules are optional: an empty builder sends none. Anything else typed in the JSON tab is sent as it
  // is, for the API to refuse at its pointer.
  const noRules = Array.isArray(definition.conditions) && definition.conditions.length === 0;
  const create = useMutation({
    mutationFn: () =>
      api.post<Segment>('/api/segments/', {
        name,
        description,
        segment_type: type,
        ...(type === 'lookalike' ? { definition: lookalike } : {}),
        ...(type !== 'lookalike' && !noRules ? { definition } : {}),
        // Only ai segments take a prompt (the API refuses one on any other type).
        ...(type === 'ai' && prompts.length > 0 ? { prompt: prompts.join(' and ') } : {}),
      }),
    onSuccess: async (segment) => {
      await client.invalidateQueries({ queryKey: ['segments'] });
      navigate(`/segments/${segment.id}`);
    },
  });
  const fields = create.error instanceof ApiError ? create.error.fieldErrors : {};
  return (
    <>
      <PageHeader title="New Segment" />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Stack>
          <Group align="flex-start" grow maw={900}>
            <TextInput
              label="Name"
              required
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              error={fields['/name']}
            />
            <Select
              label="Type"
              data={['rule', 'ai', 'lookalike']}
              value={type}
              onChange={(v) => v && setType(v)}
              allowDeselect={false}
              error={fields['/segment_type']}
            />
          </Group>
          <Textarea
            label="Description"
            maw={900}
            value={description}
            onChange={(e) => setDescription(e.currentTarget.value)}
            error={fields['/description']}
          />
          {type === 'lookalike' && (
            <LookalikeForm definition={lookalike} onChange={setLookalike} errors={fields} readOnly={false} />
          )}
          {type !== 'lookalike' && can('member') && (
            <AudienceDraft
              definition={definition}
              error={fields['/prompt']}
              onDrafted={(drafted, prompt, refined) => {
                // A fresh draft starts the prompt history over; a refinement (the old rules AND-ed) extends it.
                setPrompts((before) => (refined ? [...before, prompt] : [prompt]));
                setDefinition(drafted);
                setType('ai');
              }}
            />
          )}
          {type !== 'lookalike' && (
            <DefinitionEditor
              definition={definition}
              onChange={setDefinition}
              saveError={create.error}
              readOnly={false}
            />
          )}
          {Object.keys(fields).length === 0 && <ErrorNotice error={create.error} />}
          <Group>
            <Button type="submit" loading={create.isPending}>
              Save
            </Button>
          </Group>
        </Stack>
      </form>
    </>
  );
}
