// Sign up: email, password and the tenant slug, checked as typed with the API's own rule; the API's
// answer lands at its field. The API mails a link; opening it (VerifyEmail) creates the workspace.
import { Alert, Anchor, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useState } from 'react';
import { Link } from 'react-router';
import { ApiError, request } from '../api/client';
import { ErrorNotice } from '../app/feedback';
import { AuthFrame } from './AuthFrame';

// The API's slug rule (segops.tenancy.service.SLUG): a lowercase letter, then 1-62 letters, digits or hyphens.
const SLUG = /^[a-z][a-z0-9-]{1,62}$/;

export default function Signup() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [slug, setSlug] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const fields = error instanceof ApiError ? error.fieldErrors : {};
  const slugProblem =
    slug && !SLUG.test(slug)
      ? 'Start with a lowercase letter; then lowercase letters, digits or hyphens (2–63 characters)'
      : undefined;
  const slugError =
    slugProblem ??
    fields['/tenant_slug'] ??
    (error instanceof ApiError && error.status === 409 ? error.message : undefined);

  if (sent) {
    return (
      <AuthFrame title="Check your email">
        <Text>
          We sent a link to {email}. Open it and enter the password you just chose to finish creating your workspace.
        </Text>
      </AuthFrame>
    );
  }
  return (
    <AuthFrame title="Create your SegOps workspace">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          if (slugProblem) return;
          setBusy(true);
          setError(null);
          try {
            // 202 whether or not the address is registered: the mail says what to do next.
            await request('POST', '/api/auth/signup/', {
              body: { email, password, tenant_slug: slug },
              anonymous: true,
            });
            setSent(true);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Stack>
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
            autoComplete="new-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            error={fields['/password']}
          />
          <TextInput
            label="Tenant slug"
            description="A short lowercase identifier like acme that scopes all your data"
            required
            value={slug}
            onChange={(e) => setSlug(e.currentTarget.value)}
            error={slugError}
          />
          {error instanceof ApiError && Object.keys(fields).length === 0 && error.status !== 409 && (
            <ErrorNotice error={error} />
          )}
          {error !== null && !(error instanceof ApiError) && <ErrorNotice error={error} />}
          <Button type="submit" loading={busy}>
            Sign up
          </Button>
          <Text size="sm">
            Already have an account?{' '}
            <Anchor component={Link} to="/login">
              Log in
            </Anchor>
          </Text>
          <Alert variant="light">Invited to a team? Use the link in your invitation email instead.</Alert>
        </Stack>
      </form>
    </AuthFrame>
  );
}
