import { Loader } from '@mantine/core';
import { lazy, Suspense } from 'react';
import type { JsonEditorProps } from './JsonEditor';

const JsonEditor = lazy(() => import('./JsonEditor'));

export function LazyJsonEditor(props: JsonEditorProps) {
  return (
    <Suspense fallback={<Loader size="sm" aria-label="Loading editor" />}>
      <JsonEditor {...props} />
    </Suspense>
  );
}
