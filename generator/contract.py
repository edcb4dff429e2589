"""What the inbox contract (CONTRACT.md section 2) and the rules (POLICY.md) name.

Event names, required properties, channels (as ready-made JSON ``context``
objects), export systems and their CSV headers, the rules a planted violation
breaks, and the rejection reasons a bad line is planted with.
"""

from __future__ import annotations

SYSTEMS = ("crm", "marketing_list", "club_roster")
EXPORT_HEADERS = {
    "crm": "account_id,email,first_name,last_name,city\n",
    "marketing_list": "email,account_id\n",
    "club_roster": "account_id,email,joined_on\n",
}


# Event names (contract section 2.1).
E_CREATED = "Account Created"
E_EMAIL = "Email Changed"
E_RESET_REQ = "Password Reset Requested"
E_RESET_MAIL = "Password Reset Email Sent"
E_PWD = "Password Changed"
E_SIGNIN = "Signed In"
E_ADDRESS = "Address Changed"
E_GRANT = "Marketing Consent Granted"
E_WITHDRAW = "Marketing Consent Withdrawn"
E_SEGMENT = "Segment Consent Preference Updated"
E_DEL_REQ = "Account Deletion Requested"
E_DELETED = "Account Deleted"
E_SEND = "Marketing Message Sent"

REQUIRED_PROPS = {
    E_CREATED: ("email",),
    E_EMAIL: ("email",),
    E_ADDRESS: ("postal_code", "country"),
    E_GRANT: ("notice_version",),
    E_SEND: ("campaign_id",),
}
LATEABLE = frozenset((E_SIGNIN, E_ADDRESS))

EVENT_RULES = (
    "email_change_not_via_care_center",
    "care_action_outside_hours",
    "password_changed_without_reset",
    "marketing_without_consent",
    "activity_after_deletion",
)
EXPORT_RULES = ("marketing_list_without_consent", "club_member_without_consent")

#: Rejection reason codes used for bad lines (kept verbatim in the plan).
#: ``missing_property:`` and ``invalid_email:`` get their suffix per event.
REJECT_REASONS = (
    "invalid_json",
    "not_an_object",
    "missing_field:messageId",
    "missing_field:userId",
    "missing_field:timestamp",
    "missing_field:event",
    "missing_field:type",
    "missing_field:context.channel",
    "invalid_message_id",
    "invalid_type",
    "unknown_event",
    "unknown_channel",
    "invalid_timestamp",
    "timestamp_without_offset",
    "timestamp_too_late",
    "missing_property",
    "invalid_email:properties.email",
)
#: Reason recorded in the plan for a file that cannot be read at all.
UNREADABLE_FILE_REASON = "unreadable_file"

# Channels, as the JSON ``context`` object of a line.
CTX_WEB = '{"channel":"web"}'
CTX_APP = '{"channel":"app"}'
CTX_SYS = '{"channel":"system"}'
CTX_CARE = tuple(f'{{"channel":"care_center","agentId":"agent-{i}"}}' for i in range(1, 41))
SEG_GRANT = (
    '"consent":{"categoryPreferences":{"Marketing":true,"Analytics":false}}',
    '"consent":{"categoryPreferences":{"Analytics":true,"Marketing":true,"Advertising":false}}',
    '"consent":{"categoryPreferences":{"marketing":true,"Functional":true}}',
)
SEG_WITHDRAW = (
    '"consent":{"categoryPreferences":{"Marketing":false,"Analytics":true}}',
    '"consent":{"categoryPreferences":{"Analytics":true,"Functional":true}}',
    '"consent":{"categoryPreferences":{"marketing":false}}',
)
