"""What a shopper's message asks for: the offline advisor's intents. A `StrEnum`, so the names in plans.json
and in stored conversations stay plain strings."""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    GREETING = "greeting"
    HELP = "help"
    MY_DATA = "my_data"
    UNKNOWN = "unknown"  # nothing matched: the advisor says what it can do
    FIND_PRODUCTS = "find_products"
    PRODUCT_INFO = "product_info"
    COMPARE_PRODUCTS = "compare_products"
    SAFETY = "safety"
    IMAGES = "images"
    ANALYZE_PHOTO = "analyze_photo"
    MY_REPORTS = "my_reports"
    COMPARE_REPORTS = "compare_reports"
    ROUTINE = "routine"
    MY_PROFILE = "my_profile"
    SAVE_PROFILE = "save_profile"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CHANGE_QUANTITY = "change_quantity"
    VIEW_CART = "view_cart"
    CHECKOUT = "checkout"
    ORDER_STATUS = "order_status"
    REFUND = "refund"
    SUBSCRIBE = "subscribe"
    SUBSCRIBE_ROUTINE = "subscribe_routine"
    MY_REFILLS = "my_refills"
    SKIP_REFILL = "skip_refill"
    PAUSE_REFILL = "pause_refill"
    RESUME_REFILL = "resume_refill"
    CANCEL_REFILL = "cancel_refill"
