// The link from the verification mail: trading its token creates the account and its tenant.
import { Button, Text } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { request, session } from '../api/client';
import type { SignedIn } from '../api/types';
import { ErrorNotice, Loading } from '../app/feedback';
import { signIn } from '../app/session';
import { AuthFrame } from './AuthFrame';

export default function VerifyEmail() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);
  const token = params.get('token');

  useEffect(() => {
    // The token is single-use: React's development double effect must not spend it twice.
    if (started.current || !token) return;
    started.current = true;
    request<SignedIn>('POST', '/api/auth/verify-email/', { body: { token }, anonymous: true })
      .then((answer) => {
        session.setTenant(answer.tenant.id);
        return signIn(answer);
      })
      .then(() => navigate('/segments', { replace: true }))
      .catch(setError);
  }, [token, navigate]);

  return (
    <AuthFrame title="Verify your email">
      {!token && <Text>This link has no token. Open the link from your email again.</Text>}
      {token && !error && <Loading label="Verifying" />}
      {error !== null && (
        <>
          <ErrorNotice error={error} />
          <Button variant="default" onClick={() => navigate('/signup')}>
            Sign up again
          </Button>
        </>
      )}
    </AuthFrame>
  );
}
