// The one JSON editor of the console (definitions, sandbox payloads, connector configuration).
// CodeMirror is most of the console's code by weight: pages load it through `LazyJsonEditor` only
// when an editor is on screen.
import { json } from '@codemirror/lang-json';
import CodeMirror, { EditorView } from '@uiw/react-codemirror';
import { useMemo } from 'react';

export interface JsonEditorProps {
  value: string;
  onChange: (value: string) => void;
  /** The accessible name of the editable area (CodeMirror's own element, not a wrapper). */
  label: string;
  height: string;
  readOnly?: boolean;
}

export default function JsonEditor({ value, onChange, label, height, readOnly = false }: JsonEditorProps) {
  const extensions = useMemo(() => [json(), EditorView.contentAttributes.of({ 'aria-label': label })], [label]);
  return <CodeMirror value={value} height={height} extensions={extensions} readOnly={readOnly} onChange={onChange} />;
}
