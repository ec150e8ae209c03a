import { fireEvent, render, screen } from '@testing-library/svelte'
import { describe, expect, it, vi } from 'vitest'
import Message from './Message.svelte'
import type { ChatMessage } from './types'

function answer(extra: Partial<ChatMessage>): ChatMessage {
  return { id: 'a1', role: 'assistant', content: '', status: 'streaming', createdAt: 0, ...extra }
}

describe('Message', () => {
  it('renders an answer as sanitized Markdown with test hooks and aria-live', () => {
    render(Message, {
      props: {
        message: answer({
          content: '**bold** <img src=x onerror="alert(1)">',
          status: 'streaming',
        }),
        onretry: vi.fn(),
      },
    })
    const element = screen.getByTestId('message')
    expect(element.dataset.role).toBe('assistant')
    expect(element.dataset.status).toBe('streaming')
    expect(element).toHaveAttribute('aria-live', 'polite')
    expect(element).toHaveAttribute('aria-busy', 'true')
    expect(element.querySelector('strong')?.textContent).toBe('bold')
    expect(element.querySelector('img')).toBeNull()
    expect(element.textContent?.trim()).toBe('bold')
  })

  it('shows a user message as plain text, exactly', () => {
    const content = '<b>not bold</b>\n  indented'
    render(Message, {
      props: {
        message: { id: 'u', role: 'user', content, status: 'done', createdAt: 0 },
        onretry: vi.fn(),
      },
    })
    const element = screen.getByTestId('message')
    expect(element.dataset.role).toBe('user')
    expect(element.textContent).toBe(content)
  })

  it('shows a failure with its message and a retry action', async () => {
    const onretry = vi.fn()
    render(Message, {
      props: {
        message: answer({ status: 'error', error: { code: 'upstream', message: 'Model down' } }),
        onretry,
      },
    })
    expect(screen.getByRole('alert')).toHaveTextContent('Model down')
    await fireEvent.click(screen.getByRole('button', { name: 'Retry' }))
    expect(onretry).toHaveBeenCalledWith('a1')
  })
})
