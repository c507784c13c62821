"""The forms of the admin pages (Flask-WTF: each carries its CSRF token). Field names are the
element ids the tests and assistive technology find them by."""

# Flask-WTF ships no type information (nor WTForms without types-WTForms): its classes are Any.
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, SubmitField
from wtforms.validators import EqualTo, InputRequired, Length


class AddUserForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    username = StringField("User name", validators=[
        InputRequired("Enter a user name."), Length(max=255, message="User name is too long.")])
    password = PasswordField("Password", validators=[
        InputRequired("Enter a password."), Length(max=1024, message="Password is too long.")])
    admin = BooleanField("Admin")
    submit = SubmitField("Add user")


class ResetPasswordForm(FlaskForm):  # type: ignore[misc]  # FlaskForm is untyped (Any)
    new_password = PasswordField("New password", validators=[
        InputRequired("Enter a new password."),
        Length(max=1024, message="Password is too long.")])
    new_password_again = PasswordField("New password again", validators=[
        InputRequired("Enter the new password again."),
        EqualTo("new_password", message="The two new passwords differ.")])
    submit = SubmitField("Reset password")
