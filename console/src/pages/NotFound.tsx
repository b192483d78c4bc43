import { Anchor, Text } from '@mantine/core';
import { Link } from 'react-router';
import { PageHeader } from '../app/feedback';

export default function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <Text>
        Nothing lives here.{' '}
        <Anchor component={Link} to="/segments">
          Back to Segments
        </Anchor>
      </Text>
    </>
  );
}
