/**
 * A token trie of subscription subjects with NATS matching rules: `*` matches exactly one token,
 * `>` (last token only) matches one or more. Nodes are pruned when emptied, so per-key subjects
 * that come and go (one per user actor) do not leak.
 */
import { BadRequestError } from '../errors.js';

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  /** Items whose subject ends at this node. */
  readonly items: Set<T>;
  /** Items whose subject is this node's path followed by `>`. */
  readonly tails: Set<T>;
}

function newNode<T>(): TrieNode<T> {
  return { children: new Map(), items: new Set(), tails: new Set() };
}

const SPACE = /\s/;

/** Splits and checks a subscription subject; wildcards allowed, `>` only as the last token. */
export function subscriptionTokens(subject: string): string[] {
  const tokens = splitSubject(subject);
  const gt = tokens.indexOf('>');
  if (gt !== -1 && gt !== tokens.length - 1) {
    throw new BadRequestError('subject', `'>' must be the last token: ${JSON.stringify(subject)}`);
  }
  return tokens;
}

/** Splits and checks a publish subject: no wildcards, since it names one destination. */
export function publishTokens(subject: string): string[] {
  const tokens = splitSubject(subject);
  for (const token of tokens) {
    if (token === '*' || token === '>') {
      throw new BadRequestError(
        'subject',
        `must not contain wildcards: ${JSON.stringify(subject)}`,
      );
    }
  }
  return tokens;
}

function splitSubject(subject: string): string[] {
  if (subject.length === 0 || SPACE.test(subject)) {
    throw new BadRequestError('subject', `invalid subject ${JSON.stringify(subject)}`);
  }
  const tokens = subject.split('.');
  if (tokens.includes('')) {
    throw new BadRequestError('subject', `empty token in ${JSON.stringify(subject)}`);
  }
  return tokens;
}

export function hasWildcard(subject: string): boolean {
  return subject.includes('*') || subject.includes('>');
}

export class SubjectIndex<T> {
  private readonly root: TrieNode<T> = newNode();

  add(tokens: readonly string[], item: T): void {
    let node = this.root;
    const last = tokens.length - 1;
    for (let i = 0; i < last; i++) {
      const token = tokens[i] as string;
      let child = node.children.get(token);
      if (child === undefined) {
        child = newNode();
        node.children.set(token, child);
      }
      node = child;
    }
    const final = tokens[last] as string;
    if (final === '>') {
      node.tails.add(item);
      return;
    }
    let leaf = node.children.get(final);
    if (leaf === undefined) {
      leaf = newNode();
      node.children.set(final, leaf);
    }
    leaf.items.add(item);
  }

  remove(tokens: readonly string[], item: T): void {
    const path: TrieNode<T>[] = [this.root];
    let node: TrieNode<T> | undefined = this.root;
    const isTail = tokens[tokens.length - 1] === '>';
    const depth = isTail ? tokens.length - 1 : tokens.length;
    for (let i = 0; i < depth; i++) {
      node = node.children.get(tokens[i] as string);
      if (node === undefined) return;
      path.push(node);
    }
    if (isTail) node.tails.delete(item);
    else node.items.delete(item);
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i] as TrieNode<T>;
      if (n.items.size > 0 || n.tails.size > 0 || n.children.size > 0) break;
      (path[i - 1] as TrieNode<T>).children.delete(tokens[i - 1] as string);
    }
  }

  /** Every item whose subject matches the literal subject given as tokens. */
  match(tokens: readonly string[]): T[] {
    const out: T[] = [];
    collect(this.root, tokens, 0, out);
    return out;
  }
}

function collect<T>(node: TrieNode<T>, tokens: readonly string[], i: number, out: T[]): void {
  if (i === tokens.length) {
    for (const item of node.items) out.push(item);
    return;
  }
  // `>` needs at least one more token, which `i < tokens.length` guarantees here.
  for (const item of node.tails) out.push(item);
  const literal = node.children.get(tokens[i] as string);
  if (literal !== undefined) collect(literal, tokens, i + 1, out);
  const star = node.children.get('*');
  if (star !== undefined) collect(star, tokens, i + 1, out);
}
