// A segment's own details and its removal: "Edit details" (name, description) and "Delete", each
// sent with If-Match, so neither overwrites nor removes a segment somebody changed meanwhile.
import { Button, Group, Modal, Stack, Text, Textarea, TextInput } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import { api, ApiError } from '../api/client';
import type { Segment } from '../api/types';
import { ErrorNotice } from '../app/feedback';

/** A 412 means the segment changed since the page read it: the page reloads it for the next try. */
function useRefreshOnConflict(segment: Segment) {
  const client = useQueryClient();
  return (error: Error) => {
    if (error instanceof ApiError && error.status === 412) {
      void client.invalidateQueries({ queryKey: ['segment', segment.id] });
    }
  };
}

const CHANGED =
  'Somebody changed this segment since the page loaded it. It has been reloaded: check it, then try again.';

function Problem({ error }: { error: Error | null }) {
  if (error instanceof ApiError && error.status === 412) return <ErrorNotice error={new Error(CHANGED)} />;
  return <ErrorNotice error={error} />;
}

export function EditDetailsButton({ segment }: { segment: Segment }) {
  const client = useQueryClient();
  const refresh = useRefreshOnConflict(segment);
  const [opened, setOpened] = useState(false);
  const [read, setRead] = useState(segment);
  const [name, setName] = useState(segment.name);
  const [description, setDescription] = useState(segment.description);
  const save = useMutation({
    mutationFn: () => api.patch<Segment>(`/api/segments/${read.id}/`, { name, description }, { ifMatch: read.etag }),
    onSuccess: (saved) => {
      client.setQueryData(['segment', saved.id], saved);
      void client.invalidateQueries({ queryKey: ['segments'] });
      setOpened(false);
      notifications.show({ color: 'green', message: 'Details saved' });
    },
    onError: refresh,
  });
  const open = () => {
    save.reset();
    setRead(segment);
    setName(segment.name);
    setDescription(segment.description);
    setOpened(true);
  };
  const fields = save.error instanceof ApiError ? save.error.fieldErrors : {};
  return (
    <>
      <Button variant="default" onClick={open}>
        Edit details
      </Button>
      <Modal opened={opened} onClose={() => setOpened(false)} title="Edit segment details">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            save.mutate();
          }}
        >
          <Stack>
            <TextInput
              label="Name"
              required
              value={name}
              onChange={(e) => setName(e.currentTarget.value)}
              error={fields['/name']}
            />
            <Textarea
              label="Description"
              value={description}
              onChange={(e) => setDescription(e.currentTarget.value)}
              error={fields['/description']}
            />
            {Object.keys(fields).length === 0 && <Problem error={save.error} />}
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setOpened(false)}>
                Cancel
              </Button>
              <Button type="submit" loading={save.isPending}>
                Save details
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  );
}

export function DeleteSegmentButton({ segment }: { segment: Segment }) {
  const client = useQueryClient();
  const navigate = useNavigate();
  const refresh = useRefreshOnConflict(segment);
  const [opened, setOpened] = useState(false);
  const [read, setRead] = useState(segment);
  const remove = useMutation({
    mutationFn: () => api.delete(`/api/segments/${read.id}/`, { ifMatch: read.etag }),
    onSuccess: () => {
      // Marked stale, not removed: removing a query this page still observes refetches it at once, a
      // 404 before the navigation lands. A later visit of the address refetches (and shows the 404).
      void client.invalidateQueries({ queryKey: ['segment', read.id], refetchType: 'none' });
      void client.invalidateQueries({ queryKey: ['segments'] });
      notifications.show({ color: 'green', message: `Deleted ${read.name}` });
      void navigate('/segments');
    },
    onError: refresh,
  });
  const open = () => {
    remove.reset();
    setRead(segment);
    setOpened(true);
  };
  return (
    <>
      <Button variant="default" color="red" onClick={open}>
        Delete
      </Button>
      <Modal opened={opened} onClose={() => setOpened(false)} title="Delete segment?">
        <Stack>
          <Text>
            <strong>{read.name}</strong> and its definition versions will be deleted. Membership lookups stop returning
            it at once, and connectors following it receive no further changes. This cannot be undone.
          </Text>
          <Problem error={remove.error} />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpened(false)}>
              Cancel
            </Button>
            <Button color="red" loading={remove.isPending} onClick={() => remove.mutate()}>
              Delete segment
            </Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}
