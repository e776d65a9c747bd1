"""The real-time decision service: an authenticated HTTP API over the champion model, the
cut-off policy and the policy rules, with every decision journaled before it is answered.
"""
