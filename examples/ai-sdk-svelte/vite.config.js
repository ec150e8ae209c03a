import { svelte } from '@sveltejs/vite-plugin-svelte'
import { defineConfig } from 'vite'

// The page calls `/api/chat` on its own origin; in development (and `vite preview`) that is passed to chatrelay,
// keeping the Host header, so chatrelay's same-origin check (CSRF) and its session cookie work as in production.
const proxy = { '/api': { target: process.env.CHATRELAY_API ?? 'http://127.0.0.1:8000', changeOrigin: false } }

export default defineConfig({
  plugins: [svelte()],
  server: { proxy },
  preview: { proxy },
})
