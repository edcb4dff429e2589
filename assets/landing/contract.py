"""The event contract of CONTRACT section 2.1, as data that the validation SQL is built from."""

from __future__ import annotations

CHANNELS: tuple[str, ...] = ("web", "app", "care_center", "system")
MEDIUMS: tuple[str, ...] = ("email", "sms", "push")

#: event name -> required properties
REQUIRED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Account Created": ("email",),
    "Email Changed": ("email",),
    "Password Reset Requested": (),
    "Password Reset Email Sent": (),
    "Password Changed": (),
    "Signed In": (),
    "Address Changed": ("postal_code", "country"),
    "Marketing Consent Granted": ("notice_version",),
    "Marketing Consent Withdrawn": (),
    "Segment Consent Preference Updated": (),
    "Account Deletion Requested": (),
    "Account Deleted": (),
    "Marketing Message Sent": ("campaign_id",),
}
EVENTS: tuple[str, ...] = tuple(REQUIRED_PROPERTIES)

#: event name -> properties that must hold an e-mail address when present
EMAIL_PROPERTIES: dict[str, tuple[str, ...]] = {
    "Account Created": ("email",),
    "Email Changed": ("email", "previous_email"),
}

#: properties that identify a person; removed from an erased subject's events
PERSONAL_PROPERTIES: tuple[str, ...] = (
    "email",
    "previous_email",
    "first_name",
    "last_name",
    "street",
    "city",
    "postal_code",
    "country",
)

CONSENT_EVENTS: tuple[str, ...] = (
    "Marketing Consent Granted",
    "Marketing Consent Withdrawn",
    "Segment Consent Preference Updated",
)

MESSAGE_ID_MAX = 100

#: Every rejection reason, in the order the checks apply (the first failing check wins).
REJECTION_REASONS: tuple[str, ...] = (
    "unreadable_file",
    "invalid_json",
    "not_an_object",
    "missing_field:messageId",
    "invalid_message_id",
    "missing_field:type",
    "invalid_type",
    "missing_field:event",
    "unknown_event",
    "missing_field:userId",
    "invalid_user_id",
    "missing_field:timestamp",
    "timestamp_without_offset",
    "invalid_timestamp",
    "timestamp_too_late",
    "missing_field:context.channel",
    "unknown_channel",
    "invalid_properties",
    *sorted({f"missing_property:{p}" for props in REQUIRED_PROPERTIES.values() for p in props}),
    # a required property that is present but not a scalar (an object or a list)
    *sorted({f"invalid_property:{p}" for props in REQUIRED_PROPERTIES.values() for p in props}),
    "invalid_property:medium",
    "invalid_property:context.consent.categoryPreferences",
    "invalid_email:properties.email",
    "invalid_email:properties.previous_email",
)
