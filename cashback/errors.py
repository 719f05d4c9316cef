from core.errors import Conflict, DomainError, Unprocessable


class PinNotAllowed(DomainError):
    code = "pin_not_allowed"
    default_message = "This card does not allow PIN redemption."


class DuplicateReference(Conflict):
    code = "duplicate_reference"
    default_message = "This reference was already used on this card for another request."


class InsufficientBalance(Unprocessable):
    code = "insufficient_balance"
    default_message = "The balance is lower than the amount to redeem."


class BelowMinimumPurchase(Unprocessable):
    code = "below_minimum_purchase"
    default_message = "The purchase is below the card's minimum for cashback."


class RefundExceedsPurchase(Unprocessable):
    code = "refund_exceeds_purchase"
    default_message = "The refunds would exceed the original purchase."


class AdjustmentFormReused(Conflict):
    code = "adjustment_form_reused"
    default_message = (
        "This adjustment form was already submitted with other values; open a new one."
    )


class AdjustmentAlreadyDecided(Conflict):
    code = "adjustment_already_decided"
    default_message = "This adjustment request was already decided."


class AlreadyReversed(Conflict):
    code = "already_reversed"
    default_message = "This redemption was already reversed."


class ReversalWindowClosed(Unprocessable):
    code = "reversal_window_closed"
    default_message = "This redemption is too old to reverse."
