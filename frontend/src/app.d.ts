import type { ChatStore } from './lib/chat.svelte'
import type { Conversation } from './lib/types'

declare global {
  interface Window {
    /** Debug hook set by main.ts; see the README. */
    __chatrelay?: { store: ChatStore; snapshot: () => Conversation[] }
  }
}

export {}
