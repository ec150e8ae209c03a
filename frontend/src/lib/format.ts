/** How the page words what an answer holds; pure, for the components to render. */

/** A tool call's arguments for reading: pretty-printed JSON once they parse, the raw text until then. */
export function prettyArguments(raw: string): { text: string; json: boolean } {
  try {
    return { text: JSON.stringify(JSON.parse(raw), null, 2), json: true }
  } catch {
    return { text: raw, json: false }
  }
}

const COUNT = new Intl.NumberFormat('en')

/** `1,234 characters`, counted in code points as the server counts them. */
export function characters(text: string): string {
  let n = 0
  for (const _ of text) n++
  return `${COUNT.format(n)} ${n === 1 ? 'character' : 'characters'}`
}

export function sizeOf(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(0)} kB`
  return `${Number((bytes / 1_000_000).toFixed(1))} MB`
}
