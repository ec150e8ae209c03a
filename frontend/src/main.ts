import { mount } from 'svelte'
import './app.css'
import App from './App.svelte'
import { httpApi } from './lib/api'
import { ChatStore } from './lib/chat.svelte'
import { indexedDbImages } from './lib/images'

const store = new ChatStore({
  api: httpApi,
  eventSource: (url) => new EventSource(url),
  storage: window.localStorage,
  window,
  // Without IndexedDB (rare), images live only as long as the page.
  images: 'indexedDB' in window ? indexedDbImages() : undefined,
  // Only on secure origins (https, localhost); the store says so when it is missing.
  clipboard: navigator.clipboard,
})
store.start()

// Debug hook: the raw answer text, exactly as streamed (rendered Markdown differs from it). The browser
// tests compare it with what the model sent; it holds nothing that localStorage does not.
window.__chatrelay = { store, snapshot: () => store.snapshot() }

const target = document.getElementById('app')
if (!target) throw new Error('index.html has no #app element')

export default mount(App, { target, props: { store } })
