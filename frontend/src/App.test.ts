import { fireEvent, render, screen, within } from '@testing-library/svelte'
import { flushSync } from 'svelte'
import { afterEach, describe, expect, it } from 'vitest'
import App from './App.svelte'
import { ChatStore } from './lib/chat.svelte'
import { fakeApi, fakeSources, SharedStorage } from './lib/test-fakes'

let store: ChatStore | undefined

afterEach(() => store?.dispose())

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
  flushSync()
}

describe('App', () => {
  it('sends, streams, stops, and lists the conversation', async () => {
    const sources = fakeSources()
    const api = fakeApi()
    const { storage, window } = new SharedStorage().tab()
    store = new ChatStore({ api, eventSource: sources.factory, storage, window })
    store.start()
    render(App, { props: { store } })

    expect(screen.getByTestId('connection-status')).toHaveTextContent('idle')
    const composer = screen.getByTestId('composer')
    await fireEvent.input(composer, { target: { value: 'Explain SSE' } })
    await fireEvent.click(screen.getByTestId('send'))
    await settle()

    const source = sources.last()
    source.open()
    source.emit('delta', { text: 'It is *streaming*' }, '1-1')
    flushSync()
    expect(screen.getByTestId('connection-status')).toHaveTextContent('live')
    const [user, assistant] = screen.getAllByTestId('message')
    expect(user).toHaveAttribute('data-role', 'user')
    expect(assistant).toHaveAttribute('data-status', 'streaming')
    expect(assistant?.textContent?.trim()).toBe('It is streaming')

    await fireEvent.click(screen.getByTestId('stop'))
    expect(api.cancelStream).toHaveBeenCalledWith('stream1')
    source.emit('cancelled', { chars: 15 }, '1-2')
    flushSync()
    expect(assistant).toHaveAttribute('data-status', 'cancelled')
    expect(screen.getByTestId('connection-status')).toHaveTextContent('done')
    expect(screen.getByTestId('send')).toBeInTheDocument()

    const nav = screen.getByRole('navigation', { name: 'Conversations' })
    expect(within(nav).getByRole('button', { name: 'Explain SSE' })).toHaveAttribute(
      'aria-current',
      'page',
    )
    await fireEvent.click(screen.getByTestId('new-chat'))
    expect(screen.queryAllByTestId('message')).toHaveLength(0)
    await fireEvent.click(
      within(nav).getByRole('button', { name: 'Delete conversation: Explain SSE' }),
    )
    expect(within(nav).queryByRole('button', { name: 'Explain SSE' })).toBeNull()
  })
})
