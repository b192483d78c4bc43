// The link from the verification mail: its token and the password chosen at sign-up create the
// account and its tenant. The password proves who chose it: the link alone only proves the mailbox,
// and anyone can start a sign-up with someone else's address.
import { Anchor, Button, PasswordInput, Stack, Text } from '@mantine/core';
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { ApiError, request, session } from '../api/client';
import type { SignedIn } from '../api/types';
import { ErrorNotice } from '../app/feedback';
import { signIn } from '../app/session';
import { AuthFrame } from './AuthFrame';

export default function VerifyEmail() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const token = params.get('token');
  const fields = error instanceof ApiError ? error.fieldErrors : {};
  // A link that is used, expired or replaced by a newer sign-up cannot be retried: only signing up again helps.
  const dead = error instanceof ApiError && error.status === 404;

  return (
    <AuthFrame title="Verify your email">
      {!token && <Text>This link has no token. Open the link from your email again.</Text>}
      {token && (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            setBusy(true);
            setError(null);
            try {
              const answer = await request<SignedIn>('POST', '/api/auth/verify-email/', {
                body: { token, password },
                anonymous: true,
              });
              session.setTenant(answer.tenant.id);
              await signIn(answer);
              navigate('/segments', { replace: true });
            } catch (err) {
              setError(err);
            } finally {
              setBusy(false);
            }
          }}
        >
          <Stack>
            <Text size="sm">Enter the password you chose when you signed up to create your account and tenant.</Text>
            <PasswordInput
              label="Password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.currentTarget.value)}
              error={fields['/password']}
            />
            <ErrorNotice error={error} />
            <Button type="submit" loading={busy} disabled={dead}>
              Create my account
            </Button>
            <Text size="sm">
              Forgot it?{' '}
              <Anchor component={Link} to="/signup">
                Sign up again to choose another
              </Anchor>
            </Text>
          </Stack>
        </form>
      )}
    </AuthFrame>
  );
}
