// Transitions every role shares: the term rule, lower-term answers and vote handling. Each role lists
// them first for every message type, so the rule holds in every state before any role-specific handling.

/**
 * Figure 2 "all servers": a message with a higher term makes us adopt it and become a follower, then
 * the message is handled again as a follower. Before that, a (pre-)vote request that arrives while we
 * are under a live leader's lease is ignored (check-quorum), and pre-vote traffic never changes terms.
 */
export const termRule = [
  { guard: 'voteInLease' },
  { guard: 'mustAdoptTerm', target: '#replica.follower', reenter: true, actions: ['adoptTerm', 'reraise'] },
] as const;

/** A message from a lower term: answer it with our term where that helps the sender (as etcd raft). */
export const staleRule = { guard: 'isStale', actions: 'answerStale' } as const;

/** RequestVote handling; a grant resets the election timer by re-entering `grantTarget`. */
export function voteTransitions<T extends string>(grantTarget: T) {
  return [
    ...termRule,
    staleRule,
    { guard: 'isPreVote', actions: 'answerPreVote' },
    { guard: 'canGrantVote', target: grantTarget, reenter: true, actions: 'grantVote' },
    { actions: 'rejectVote' },
  ] as const;
}
