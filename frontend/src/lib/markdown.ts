/**
 * Model text to safe HTML: `marked` (GitHub-flavoured: code blocks, lists, tables), then DOMPurify.
 *
 * Model output is untrusted input (a prompt can make a model write anything), so the sanitizer runs on every
 * render, and beyond DOMPurify's defaults it drops what could act without a click: images (a markdown image
 * to an attacker's host leaks data through its URL), inline styles, forms and media. Images are rendered
 * as links instead. Links open in a new tab without a referrer.
 */
import DOMPurify from 'dompurify'
import { Marked } from 'marked'

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c)
}

const marked = new Marked({
  gfm: true,
  async: false,
  renderer: {
    image({ href, text }) {
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`
    },
  },
})

const purifier = DOMPurify()
purifier.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer nofollow')
  }
})

const FORBID_TAGS = [
  'img',
  'picture',
  'source',
  'video',
  'audio',
  'track',
  'style',
  'form',
  'input',
  'button',
  'textarea',
  'select',
  'option',
  'svg',
  'math',
]

export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false })
  return purifier.sanitize(html, {
    USE_PROFILES: { html: true },
    FORBID_TAGS,
    FORBID_ATTR: ['style', 'class', 'id'],
  })
}
