"""The Vercel AI SDK surface (`/api/chat`): the UI message stream over chatrelay's stored streams."""
