// Saving a segment's definition without overwriting one somebody else saved meanwhile.
import { Alert, Button, Group, Stack, Text } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, ApiError } from '../api/client';
import type { Segment } from '../api/types';

/** A definition saved by someone else since this editor read the one it edits. */
export class DefinitionConflict extends Error {
  readonly current: Segment;

  constructor(current: Segment) {
    super(`version ${current.version} was saved since this definition was opened`);
    this.current = current;
  }
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

interface Options {
  segment: Segment;
  /** The PATCH body: the edited definition (and what goes with it). */
  body: () => Record<string, unknown>;
  /** Replace the editor's definition (the person chose to load the other version). */
  onLoad: (definition: Segment['definition']) => void;
  onSaved?: (saved: Segment) => void;
}

/** The save sends `If-Match` with the `ETag` the edited definition was read with. A 412 caused by
 * another field (a rename, the Active switch) is sent again on the new `ETag`; one caused by a new
 * definition is a `DefinitionConflict`: the person loads that version or saves theirs over it. */
export function useDefinitionSave({ segment, body, onLoad, onSaved }: Options) {
  const client = useQueryClient();
  const [base, setBase] = useState({ etag: segment.etag, definition: segment.definition });
  const path = `/api/segments/${segment.id}/`;
  const save = useMutation({
    mutationFn: async (over?: Segment) => {
      const sent = body();
      if (over) return api.patch<Segment>(path, sent, { ifMatch: over.etag });
      try {
        return await api.patch<Segment>(path, sent, { ifMatch: base.etag });
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 412)) throw error;
        const current = await api.get<Segment>(path);
        if (!sameJson(current.definition, base.definition)) throw new DefinitionConflict(current);
        return api.patch<Segment>(path, sent, { ifMatch: current.etag });
      }
    },
    onSuccess: (saved) => {
      setBase({ etag: saved.etag, definition: saved.definition });
      client.setQueryData(['segment', segment.id], saved);
      void client.invalidateQueries({ queryKey: ['versions', segment.id] });
      onSaved?.(saved);
      notifications.show({ color: 'green', message: `Saved as version ${saved.version}` });
    },
  });
  const conflict = save.error instanceof DefinitionConflict ? save.error.current : null;
  const loadTheirs = () => {
    if (!conflict) return;
    setBase({ etag: conflict.etag, definition: conflict.definition });
    client.setQueryData(['segment', segment.id], conflict);
    void client.invalidateQueries({ queryKey: ['versions', segment.id] });
    onLoad(conflict.definition);
    save.reset();
  };
  const saveOver = () => conflict && save.mutate(conflict);
  return { save, conflict, loadTheirs, saveOver };
}

export function ConflictNotice({
  conflict,
  onLoad,
  onSaveOver,
  busy,
}: {
  conflict: Segment;
  onLoad: () => void;
  onSaveOver: () => void;
  busy: boolean;
}) {
  return (
    <Alert color="red" title="This definition changed while you were editing it" role="alert">
      <Stack gap="xs">
        <Text size="sm">
          Somebody saved version {conflict.version} after you opened this segment. Your changes are not saved: load
          version {conflict.version} (your edits are dropped) or save yours over it as a new version.
        </Text>
        <Group>
          <Button variant="default" onClick={onLoad} disabled={busy}>
            Load version {conflict.version}
          </Button>
          <Button color="red" onClick={onSaveOver} loading={busy}>
            Save mine over it
          </Button>
        </Group>
      </Stack>
    </Alert>
  );
}
