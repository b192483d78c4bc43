// "Describe your audience": a prompt drafted into a definition by the API (`POST
// /api/segments/ai/draft/`), which fills the rule builder. Draft starts over; Refine sends the
// current definition, and the API AND-s the new conditions to it. Nothing is saved here.
import { Alert, Button, Group, List, Paper, Stack, Text, Textarea, Title } from '@mantine/core';
import { useMutation } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../api/client';
import type { AiDraft } from '../api/types';
import type { Group as DslGroup } from './dsl';

interface Props {
  definition: DslGroup;
  /** The drafted definition, the prompt it came from, and whether it refined the given definition. */
  onDrafted: (definition: DslGroup, prompt: string, refined: boolean) => void;
  /** The save's message for the stored prompt (`/prompt`), if it refused it. */
  error?: string | undefined;
}

export function AudienceDraft({ definition, onDrafted, error }: Props) {
  const [prompt, setPrompt] = useState('');
  const draft = useMutation({
    mutationFn: (refine: boolean) =>
      api.post<AiDraft>('/api/segments/ai/draft/', { prompt, ...(refine ? { definition } : {}) }),
    onSuccess: (result, refine) => onDrafted(result.definition as DslGroup, prompt, refine),
  });
  const failure = draft.error instanceof ApiError ? draft.error : null;
  // A prompt with no usable condition is a 400 that still says what was not understood.
  const failureWarnings = (failure?.details.warnings ?? []) as string[];
  const warnings = draft.data?.warnings ?? failureWarnings;
  const canRefine = Array.isArray(definition.conditions) && definition.conditions.length > 0;
  const send = (refine: boolean) => {
    if (prompt.trim()) draft.mutate(refine);
  };

  return (
    <Paper withBorder p="sm" maw={900} component="section" aria-labelledby="audience-draft-title">
      <Stack gap="xs">
        <Title order={2} size="h4" id="audience-draft-title">
          Describe your audience
        </Title>
        <Textarea
          label="Audience description"
          description="In plain words, e.g. “viewed pricing at least 3 times in the last 7 days”. The draft fills the rules below."
          autosize
          minRows={2}
          maxLength={2000}
          value={prompt}
          onChange={(e) => setPrompt(e.currentTarget.value)}
          error={failure?.fieldErrors['/prompt'] ?? error}
        />
        <Group gap="xs">
          <Button
            type="button"
            loading={draft.isPending && !draft.variables}
            onClick={() => send(false)}
            disabled={!prompt.trim() || draft.isPending}
          >
            Draft
          </Button>
          <Button
            type="button"
            variant="light"
            loading={draft.isPending && draft.variables}
            onClick={() => send(true)}
            disabled={!prompt.trim() || !canRefine || draft.isPending}
          >
            Refine
          </Button>
        </Group>
        {draft.isError && !failure?.fieldErrors['/prompt'] && (
          <Alert color="red" role="alert" title="The draft failed">
            {draft.error.message}
          </Alert>
        )}
        {draft.data && (
          <div aria-label="Explanation" role="region">
            <Text size="sm" fw={500}>
              The rules now select users who:
            </Text>
            <List size="sm" data-testid="draft-explanation">
              {draft.data.explanation.map((line, i) => (
                <List.Item key={i}>{line}</List.Item>
              ))}
            </List>
          </div>
        )}
        {warnings.length > 0 && (
          <Alert
            color="yellow"
            title="Warnings"
            data-testid="draft-warnings"
            // the yellow tint stays the cue; its text colour is below 4.5:1 on that tint, black is not
            styles={{ title: { color: 'var(--mantine-color-black)' } }}
          >
            <List size="sm">
              {warnings.map((line, i) => (
                <List.Item key={i}>{line}</List.Item>
              ))}
            </List>
          </Alert>
        )}
      </Stack>
    </Paper>
  );
}
