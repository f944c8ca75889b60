"""Payments reported by the payment broker: issuance after payment, refunds, failures."""
