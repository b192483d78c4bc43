import { Anchor, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useState } from 'react';
import { Link, useLocation, useNavigate, useSearchParams } from 'react-router';
import { SESSION_ENDED } from '../app/Shell';
import { ApiError, request, type Tokens } from '../api/client';
import { ErrorNotice } from '../app/feedback';
import { signIn } from '../app/session';
import { AuthFrame } from './AuthFrame';

/** Only same-site paths: `next` comes from the URL and must not send a person elsewhere. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/segments';
}

export function Login() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const fields = error instanceof ApiError ? error.fieldErrors : {};
  const sessionEnded = (useLocation().state as typeof SESSION_ENDED | null)?.sessionEnded === true;

  return (
    <AuthFrame title="Log in to SegOps">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await signIn(
              await request<Tokens>('POST', '/api/auth/token/', { body: { email, password }, anonymous: true }),
            );
            navigate(safeNext(params.get('next')), { replace: true });
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Stack>
          {sessionEnded && <Text size="sm">Your session ended. Log in to continue.</Text>}
          <TextInput
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            error={fields['/email']}
          />
          <PasswordInput
            label="Password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            error={fields['/password']}
          />
          <ErrorNotice error={error} />
          <Button type="submit" loading={busy}>
            Log in
          </Button>
          <Text size="sm">
            New to SegOps?{' '}
            <Anchor component={Link} to="/signup">
              Sign up
            </Anchor>
          </Text>
        </Stack>
      </form>
    </AuthFrame>
  );
}
