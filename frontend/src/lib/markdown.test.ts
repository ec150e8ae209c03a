import { describe, expect, it } from 'vitest'
import { renderMarkdown } from './markdown'

function dom(markdown: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = renderMarkdown(markdown)
  return div
}

describe('renderMarkdown', () => {
  it('renders code blocks, lists and tables', () => {
    const div = dom(
      '# T\n\n- one\n- two\n\n```py\nprint("<b>")\n```\n\n| a | b |\n| - | - |\n| 1 | 2 |\n',
    )
    expect(div.querySelectorAll('li')).toHaveLength(2)
    expect(div.querySelector('pre code')?.textContent).toBe('print("<b>")\n')
    expect(div.querySelectorAll('td')).toHaveLength(2)
  })

  it('removes scripts, event handlers and images', () => {
    const div = dom(
      'Hi <img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script>' +
        ' <a href="javascript:alert(1)" onclick="x()">link</a> <svg onload="x()"></svg>' +
        ' <iframe src="https://example.com"></iframe> ![pic](https://example.com/a.png)',
    )
    const html = div.innerHTML
    expect(div.querySelector('img, script, svg, iframe')).toBeNull()
    expect(html).not.toMatch(/onerror|onclick|onload|javascript:/i)
    expect(div.querySelector('a[href="https://example.com/a.png"]')?.textContent).toBe('pic')
  })

  it('opens links in a new tab without a referrer', () => {
    const a = dom('[site](https://example.com)').querySelector('a')
    expect(a?.getAttribute('target')).toBe('_blank')
    expect(a?.getAttribute('rel')).toContain('noopener')
  })
})
