"""The HTTP side: accepts chats, enqueues generations, relays stored events as Server-Sent Events."""
