"""Serializer fields that refuse what DRF would silently coerce (1 -> "1", an int -> a UUID,
"yes" -> True), and a serializer that refuses fields it does not declare."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class _QueryParameter:
    """A query parameter given empty (`?days=`, `?cursor=`) is a value to validate, and refuse,
    where DRF would read an empty value of an optional field as absent."""

    def get_value(self, dictionary):
        if dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class QueryIntegerField(_QueryParameter, serializers.IntegerField):
    """An integer query parameter."""


class QueryCharField(_QueryParameter, StrictCharField):
    """A text query parameter."""


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class ClosedSerializer(serializers.Serializer):
    """Refuses a field it does not declare rather than ignoring it, lest a client believe it
    chose something."""

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


__all__ = [
    "ClosedSerializer",
    "QueryCharField",
    "QueryIntegerField",
    "StrictBooleanField",
    "StrictCharField",
    "StrictIntegerField",
    "StrictUUIDField",
]
