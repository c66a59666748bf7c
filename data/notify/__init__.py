"""Push and escalation: the policy (who is told what, when), the ladder each open issue climbs,
the outbox written in the transaction of its cause, the one sender that delivers it to WeCom,
Feishu, DingTalk, webhooks and e-mail, and the signed links that acknowledge from the phone.

    policy     the escalation policy document: checked, stored, exported
    ladder     when each step of an issue's ladder falls due (pure, explicit as_of)
    messages   what a message says, in either language, with its mentions
    outbox     steps owed -> escalation events and deliveries, in one transaction
    channels   each platform's request, signature and answer codes
    sender     the one sender: lease, pace, digests, retries
    links      signed, expiring, single-use acknowledgement links
"""
