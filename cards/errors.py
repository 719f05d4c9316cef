from core.errors import Unprocessable


class CardInactive(Unprocessable):
    code = "card_inactive"
    default_message = "This card is inactive."
